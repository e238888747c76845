"""deploy/: campaigns on remote hosts over SSH (Paramiko), and a local SSH testbed to run them on.

* :mod:`deploy.config` — the TOML inventory (hosts, paths) and campaign, validated before connecting
* :mod:`deploy.ssh` — one session per host: host-key policy, quoted commands, drained output with
  deadlines, background processes stopped by PID, atomic SFTP transfers, NTP-style clock offset
* :mod:`deploy.remote_helper` — the stdlib-only program those sessions run on the hosts
* :mod:`deploy.check` / :mod:`deploy.push` / :mod:`deploy.campaign` / :mod:`deploy.report` — the
  ``genet deploy check | push | run | report`` commands (:mod:`deploy.cli`)
* :mod:`deploy.schemes` — what each scheme kind runs on the server and client sides, and its metrics
* :mod:`deploy.testbed` — ``genet deploy testbed up/down``: namespaces with real sshd joined by
  emulated links (:class:`emulation.LinkEmulator`)
"""
