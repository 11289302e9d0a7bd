"""``attnrun serve``: type a sentence, point at a word, switch heads off — attention explored live.

- :mod:`attnrun.serve.runs`: the loaded runs (:func:`~attnrun.serve.runs.load_runs`);
- :mod:`attnrun.serve.engines`: what a request does with a run of each experiment (the functions
  ``attnrun predict`` calls, under :mod:`attnrun.core.heads` interventions);
- :mod:`attnrun.serve.answers`: heads switched off, their maps and rollout;
- :mod:`attnrun.serve.requests`: a request's fields and limits;
- :mod:`attnrun.serve.api`: request schemas and the JSON route handlers;
- :mod:`attnrun.serve.page`: the page (inline JS and CSS from ``static/``, the viewer's drawing
  from :mod:`attnrun.viz.viewer`);
- :mod:`attnrun.serve.app`: the Starlette app factory and the uvicorn server.

The user guide with the API is ``docs/guides/serve.md``.
"""
