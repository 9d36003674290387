"""The launchd service without macOS: launchd/render.py's plist checked with plistlib, and the Makefile's
install / uninstall / reload / restart / status / logs targets run against a stub `launchctl` that
records its argv, with every install directory under tmp_path."""

from __future__ import annotations

import importlib.util
import json
import os
import plistlib
import pwd
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABEL = "local.litegate"
SECRET = "sk-THIS-MUST-NOT-LEAK"


def _load_render():
    spec = importlib.util.spec_from_file_location("litegate_launchd_render", ROOT / "launchd" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_render()


def write_config(path: Path, **server) -> Path:
    doc = {"models": [{"name": "gpt", "provider": "openai", "model": "m", "api_key_env": "UPSTREAM_KEY"}]}
    if server:
        doc["server"] = server
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def world(tmp_path):
    """A fake home, a config, a private env file holding a secret, a venv whose executables exist, and a
    stub launchctl that appends its argv to a file and keeps a `loaded` marker like launchd would."""
    home = tmp_path / "home"
    (home / ".config" / "litegate").mkdir(parents=True)
    env_file = home / ".config" / "litegate" / "env"
    env_file.write_text(f"UPSTREAM_KEY={SECRET}\n")
    env_file.chmod(0o600)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name, body in (("python", f'exec "{sys.executable}" "$@"'),
                       ("litegate", f'exec "{sys.executable}" -m litegate "$@"')):
        exe = venv / "bin" / name
        exe.write_text(f"#!/bin/sh\n{body}\n")
        exe.chmod(0o755)
    (venv / ".installed").touch()  # newer than setup.cfg: make will not pip-install into the fake venv
    calls, state = tmp_path / "launchctl.calls", tmp_path / "launchctl.loaded"
    stub = tmp_path / "bin" / "launchctl"
    stub.parent.mkdir()
    stub.write_text(f"""#!/bin/sh
printf '%s\\n' "$*" >> "{calls}"
case "$1" in
  bootstrap) : > "{state}" ;;
  bootout) rm -f "{state}" ;;
  print) if [ -e "{state}" ]; then echo "state = running"; else echo "Could not find service" >&2; exit 113; fi ;;
esac
""")
    stub.chmod(0o755)
    return SimpleNamespace(tmp=tmp_path, home=home, env_file=env_file, venv=venv, stub=stub, calls=calls,
                           config=write_config(tmp_path / "litegate.json"), uid=os.getuid())


def make(world, target: str, *args: str) -> subprocess.CompletedProcess:
    """Run a Makefile target with a minimal environment (no MAKEFLAGS or stray SCOPE/LABEL from outside)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(world.home), "LANG": "C"}
    cmd = ["make", "--no-print-directory", target, f"VENV={world.venv}", f"CONFIG={world.config}",
           f"LAUNCHCTL={world.stub}", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def calls(world) -> list[str]:
    lines = world.calls.read_text().splitlines() if world.calls.exists() else []
    world.calls.unlink(missing_ok=True)
    return lines


def agent_plist(world) -> Path:
    return world.home / "Library" / "LaunchAgents" / f"{LABEL}.plist"


# ------------------------------------------------------------------ render.py


def render_args(world, *extra: str) -> list[str]:
    return ["--output", str(world.tmp / "out.plist"), "--label", LABEL,
            "--program", str(world.venv / "bin" / "litegate"), "--config", str(world.config),
            "--env-file", str(world.env_file), "--log-dir", str(world.tmp / "logs"),
            "--workdir", str(ROOT), *extra]


def test_rendered_plist_is_a_sound_launchd_job(world):
    """The plist has every key launchd needs, with the right types and absolute paths: the venv's litegate
    serving the config with the env file, logs under the log dir, RunAtLoad, KeepAlive on failure only,
    a restart throttle, an exit timeout beyond the drain grace, a file-descriptor limit, no UserName."""
    assert render.main(render_args(world)) == 0
    raw = (world.tmp / "out.plist").read_bytes()
    job = plistlib.loads(raw)
    assert job["Label"] == LABEL
    assert job["ProgramArguments"] == [str(world.venv / "bin" / "litegate"), "serve", "--config", str(world.config),
                                       "--env-file", str(world.env_file)]
    assert job["WorkingDirectory"] == str(ROOT)
    assert job["StandardOutPath"] == str(world.tmp / "logs" / "litegate.log")
    assert job["StandardErrorPath"] == str(world.tmp / "logs" / "litegate.err.log")
    for key in ("WorkingDirectory", "StandardOutPath", "StandardErrorPath"):
        assert os.path.isabs(job[key])
    assert all(os.path.isabs(a) for a in job["ProgramArguments"] if "/" in a)
    assert job["RunAtLoad"] is True
    assert job["KeepAlive"] == {"SuccessfulExit": False}
    assert type(job["ThrottleInterval"]) is int and job["ThrottleInterval"] == 30
    assert type(job["ExitTimeOut"]) is int and job["ExitTimeOut"] == 30 + render.EXIT_MARGIN_S
    for limits in ("SoftResourceLimits", "HardResourceLimits"):
        assert job[limits] == {"NumberOfFiles": 8192} and type(job[limits]["NumberOfFiles"]) is int
    assert "UserName" not in job
    assert not re.search(rb"@[A-Z_]+@", raw)  # no placeholder left
    assert SECRET.encode() not in raw and b"UPSTREAM_KEY" not in raw
    assert stat.S_IMODE((world.tmp / "out.plist").stat().st_mode) == 0o644


def test_render_expands_home_and_relative_paths(world, monkeypatch):
    """`~` and relative paths (as make passes them) become absolute: launchd resolves neither."""
    monkeypatch.setenv("HOME", str(world.home))
    monkeypatch.chdir(world.tmp)
    args = render_args(world)
    args[args.index("--env-file") + 1] = "~/.config/litegate/env"
    args[args.index("--config") + 1] = "litegate.json"
    assert render.main(args) == 0
    job = plistlib.loads((world.tmp / "out.plist").read_bytes())
    assert job["ProgramArguments"][3] == str(world.config)
    assert job["ProgramArguments"][5] == str(world.env_file)


def test_exit_timeout_follows_the_drain_grace(world):
    """ExitTimeOut (launchd's SIGKILL deadline) is the config's shutdown_grace_s, rounded up, plus a margin."""
    write_config(world.config, shutdown_grace_s=44.2)
    assert render.main(render_args(world, "--throttle-s", "12", "--nofile", "4096", "--user", "alice")) == 0
    job = plistlib.loads((world.tmp / "out.plist").read_bytes())
    assert job["ExitTimeOut"] == 45 + render.EXIT_MARGIN_S
    assert job["ThrottleInterval"] == 12 and job["SoftResourceLimits"]["NumberOfFiles"] == 4096
    assert job["UserName"] == "alice"


@pytest.mark.parametrize("change,message", [
    (("--program", "/nonexistent/litegate"), "is not an executable file"),
    (("--config", "/nonexistent/litegate.json"), "is not a file"),
    (("--label", "bad label"), "reverse-DNS"),
])
def test_render_refuses_what_launchd_could_not_run(world, capsys, change, message):
    """A missing program or config, or a malformed label, is refused with a message and no plist."""
    args = render_args(world)
    args[args.index(change[0]) + 1] = change[1]
    assert render.main(args) == 1
    assert message in capsys.readouterr().err
    assert not (world.tmp / "out.plist").exists()


def test_template_placeholders_are_all_filled(world):
    """A placeholder the renderer has no value for is an error, not a literal `@NAME@` in the job."""
    with pytest.raises(render.RenderError, match="@NOPE@"):
        render.fill({"Label": "@NOPE@"}, {})
    with pytest.raises(render.RenderError, match="mixes"):
        render.fill({"Label": "x-@LABEL@"}, {"LABEL": "y"})


# ------------------------------------------------------------------ Makefile


def test_install_then_upgrade_in_place(world):
    """make install: validates the config with the env file, writes the agent plist, bootstraps it into
    gui/<uid>; run again it boots the loaded job out first, rewrites the plist and bootstraps again."""
    res = make(world, "install")
    assert res.returncode == 0, res.stderr
    target, plist = f"gui/{world.uid}/{LABEL}", agent_plist(world)
    assert calls(world) == [f"print {target}", f"bootstrap gui/{world.uid} {plist}"]
    job = plistlib.loads(plist.read_bytes())
    assert job["ProgramArguments"][0] == str(world.venv / "bin" / "litegate")
    assert job["ProgramArguments"][3] == str(world.config) and job["ProgramArguments"][5] == str(world.env_file)
    assert job["StandardOutPath"] == str(world.home / "Library" / "Logs" / "litegate" / "litegate.log")
    assert (world.home / "Library" / "Logs" / "litegate").is_dir()
    assert SECRET not in plist.read_text() and SECRET not in res.stdout + res.stderr

    write_config(world.config, shutdown_grace_s=5)
    res = make(world, "install")
    assert res.returncode == 0, res.stderr
    assert calls(world) == [f"print {target}", f"bootout {target}", f"bootstrap gui/{world.uid} {plist}"]
    assert plistlib.loads(plist.read_bytes())["ExitTimeOut"] == 5 + render.EXIT_MARGIN_S


def test_install_creates_a_private_env_file(world):
    """With no env file yet, install creates an empty one with mode 600 (the place for the secrets)."""
    world.env_file.unlink()
    world.config.write_text(json.dumps({"models": [{"name": "llama", "provider": "ollama", "model": "m"}]}))
    res = make(world, "install")
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(world.env_file.stat().st_mode) == 0o600
    assert all(line.startswith("#") for line in world.env_file.read_text().splitlines())


def test_install_refuses_a_config_that_would_not_start(world):
    """A config that fails check-config (here: its secret is missing from the env file) stops install
    before any plist is written or launchctl is called."""
    world.env_file.write_text("# nothing here\n")
    res = make(world, "install")
    assert res.returncode != 0
    assert "UPSTREAM_KEY is not set" in res.stderr
    assert calls(world) == [] and not agent_plist(world).exists()


def test_uninstall_boots_out_and_removes_the_plist(world):
    """make uninstall: bootout if loaded, remove the plist, keep logs; when nothing is loaded it still succeeds."""
    assert make(world, "install").returncode == 0
    calls(world)
    res = make(world, "uninstall")
    assert res.returncode == 0, res.stderr
    assert calls(world) == [f"print gui/{world.uid}/{LABEL}", f"bootout gui/{world.uid}/{LABEL}"]
    assert not agent_plist(world).exists() and world.env_file.exists()
    res = make(world, "uninstall")
    assert res.returncode == 0 and calls(world) == [f"print gui/{world.uid}/{LABEL}"]


def test_reload_restart_status_logs(world):
    """reload sends SIGHUP through launchctl kill, restart is kickstart -k, status is launchctl print,
    logs tails both log files."""
    target = f"gui/{world.uid}/{LABEL}"
    assert make(world, "reload").returncode == 0
    assert make(world, "restart").returncode == 0
    make(world, "status")  # the stub exits 113 when nothing is loaded, like launchctl
    assert calls(world) == [f"kill SIGHUP {target}", f"kickstart -k {target}", f"print {target}"]
    logs = world.home / "Library" / "Logs" / "litegate"
    logs.mkdir(parents=True)
    (logs / "litegate.log").write_text('{"event": "ready"}\n')
    (logs / "litegate.err.log").write_text("litegate: invalid config x\n")
    res = make(world, "logs", "TAIL=tail -n 5")
    assert res.returncode == 0 and '{"event": "ready"}' in res.stdout and "litegate: invalid config x" in res.stdout


def test_system_scope_is_a_launch_daemon(world):
    """SCOPE=system: the plist goes to <PREFIX>/Library/LaunchDaemons, logs to <PREFIX>/Library/Logs/litegate,
    the domain is `system`, and the job runs as RUN_AS rather than root."""
    me = pwd.getpwuid(os.getuid()).pw_name
    prefix = world.tmp / "root"
    res = make(world, "install", "SCOPE=system", f"PREFIX={prefix}", "SUDO=", f"RUN_AS={me}")
    assert res.returncode == 0, res.stderr
    plist = prefix / "Library" / "LaunchDaemons" / f"{LABEL}.plist"
    assert calls(world) == [f"print system/{LABEL}", f"bootstrap system {plist}"]
    job = plistlib.loads(plist.read_bytes())
    assert job["UserName"] == me
    assert job["StandardErrorPath"] == str(prefix / "Library" / "Logs" / "litegate" / "litegate.err.log")
    assert not agent_plist(world).exists()
    assert make(world, "reload", "SCOPE=system", "SUDO=").returncode == 0
    assert calls(world) == [f"kill SIGHUP system/{LABEL}"]


def test_service_targets_explain_a_missing_launchctl(world):
    """Without launchctl (not macOS) the targets stop with one clear line instead of a shell error."""
    res = make(world, "reload", "LAUNCHCTL=/nonexistent/launchctl")
    assert res.returncode != 0 and "launchd (macOS)" in res.stderr


# ------------------------------------------------------------------ make run / make reload, offline commands


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_run_reads_the_env_file_and_make_reload_reaches_it(world):
    """`make run` reads the service's env file (the config's secret comes from it) and leaves a pidfile;
    `make reload` checks the config first (a broken one is refused, nothing is signalled), then SIGHUPs
    the running instance, whose log says config_reloaded."""
    import time

    port = free_port()
    world.config.write_text(json.dumps({"models": [{"name": "gpt", "provider": "openai", "model": "m",
                                                    "api_key_env": "UPSTREAM_KEY"}],
                                        "server": {"port": port, "log_format": "json"},
                                        "usage": {"path": str(world.tmp / "usage")}}))
    pidfile = world.tmp / "litegate.pid"
    env = {"PATH": os.environ["PATH"], "HOME": str(world.home), "LANG": "C"}
    log = open(world.tmp / "run.log", "w")
    proc = subprocess.Popen(["make", "--no-print-directory", "run", f"VENV={world.venv}", f"CONFIG={world.config}",
                             f"PIDFILE={pidfile}"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in (world.tmp / "run.log").read_text():
            assert proc.poll() is None, (world.tmp / "run.log").read_text()  # EX_CONFIG if the env was not read
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert pidfile.read_text().strip().isdigit()
        world.config.write_text(world.config.read_text().replace('"m"', '"m2"').replace('"openai"', '"opnai"'))
        res = make(world, "reload", f"PIDFILE={pidfile}")
        assert res.returncode != 0 and "did you mean 'openai'?" in res.stderr + res.stdout
        world.config.write_text(world.config.read_text().replace('"opnai"', '"openai"'))
        res = make(world, "reload", f"PIDFILE={pidfile}")
        assert res.returncode == 0 and "sent SIGHUP to the make-run litegate" in res.stdout, res.stderr
        while "config_reloaded" not in (world.tmp / "run.log").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert calls(world) == []  # launchd was never asked
    finally:
        pid = int(pidfile.read_text()) if pidfile.exists() else None
        if pid:
            os.kill(pid, 15)
        proc.wait(30)
        log.close()
    assert not pidfile.exists()  # removed on a clean exit


def test_route_works_offline_and_check_config_lists_pulls(world):
    """`litegate route` needs none of the config's secrets (it calls no backend); check-config names every
    `ollama pull` the config needs."""
    doc = {"models": [{"name": "gpt", "provider": "openai", "model": "m", "api_key_env": "NOT_SET_ANYWHERE"},
                      {"name": "llama", "provider": "ollama", "model": "llama3.1:8b"},
                      {"name": "coder", "provider": "ollama", "model": "qwen2.5-coder:7b"}],
           "router": {"fallbacks": {"llama": ["gpt"]}}}
    path = world.tmp / "c.json"
    path.write_text(json.dumps(doc))
    env = {"PATH": os.environ["PATH"], "HOME": str(world.home)}
    out = subprocess.run([sys.executable, "-m", "litegate", "route", "--config", str(path), "--model", "llama",
                          "--message", "hi"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "then fallback gpt" in out.stdout
    doc["models"][0].pop("api_key_env")
    path.write_text(json.dumps(doc))
    out = subprocess.run([sys.executable, "-m", "litegate", "check-config", str(path)], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "    ollama pull llama3.1:8b\n    ollama pull qwen2.5-coder:7b\n" in out.stdout


def test_usage_names_its_database(world):
    """`litegate usage` says which database it read, and names the one it did not find."""
    env = {"PATH": os.environ["PATH"], "HOME": str(world.home)}
    missing = world.tmp / "nowhere"
    out = subprocess.run([sys.executable, "-m", "litegate", "usage", "--db", str(missing)], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=60)
    assert out.returncode == 1 and f"no usage database at {missing / 'usage.db'}" in out.stderr
    assert not missing.exists()  # looking did not create it
