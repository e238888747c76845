"""player/: the DASH video server (Flask on waitress) with Pensieve's ABR endpoint, the headless player,
test videos, and ``genet emulate abr``.

* :mod:`player.content`: video directories (sized from a chunk table, or encoded with ffmpeg) and the MPD;
* :mod:`player.abr`: one session's ABR decisions (the policy registry + the one observation builder) and
  Pensieve's dash.js <-> ABR-server protocol;
* :mod:`player.server`: the Flask app and ``genet player serve``;
* :mod:`player.client`: the headless player and ``genet player play`` (its JSON-lines log format);
* :mod:`player.emulate`: ``genet emulate abr`` (sessions over emulated links, results beside the simulator's).

The server, the player and the content modules import only numpy, flask, waitress, onnxruntime (for ONNX
policies) and the standard library; :mod:`player.emulate` also needs the simulator (the ``sim`` extra).
"""
