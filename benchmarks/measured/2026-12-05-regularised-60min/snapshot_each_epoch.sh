#!/bin/bash
# copy model.pt after every epoch (metrics.json's epoch changes) with a timestamp
RUN=$1; SNAP=$2; mkdir -p $SNAP; last=""
while true; do
  if [ -f $RUN/metrics.json ]; then
    read -r ep st < <(python3 -c "import json;m=json.load(open('$RUN/metrics.json'));print(m.get('epoch') or '-',m.get('status') or '-')" 2>/dev/null)
    if [ -n "$ep" ] && [ "$ep" != "-" ] && [ "$ep" != "$last" ]; then
      sleep 8; cp $RUN/model.pt $SNAP/model_e$ep.pt 2>/dev/null; cp $RUN/metrics.json $SNAP/metrics_e$ep.json
      echo "$ep $(date +%s) $(date -u +%T)" >> $SNAP/times.txt; last=$ep
    fi
    [ "$st" = "completed" ] && break
  fi
  sleep 10
done
