from attnrun.cli import main

main()
