"""A real ResultsDB (../shared/peers/resultsdb on SQLite) for the tests,
and ResultsDB-Updater's consumer as the oracle of what each CI message
must become (tests/peers/resultsdb_updater_oracle.py).  Both skip with
one line (peers.SKIP_PREFIX) when the peers are absent."""

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import free_ports
from peers import PEERS, PYTHON, REPO, SKIP_PREFIX

RESULTSDB = PEERS / "resultsdb"
UPDATER = PEERS / "resultsdb-updater"
ORACLE = REPO / "tests" / "peers" / "resultsdb_updater_oracle.py"


def need_resultsdb():
    if not (RESULTSDB / "runapp.py").is_file() or \
            not (UPDATER / "resultsdbupdater" / "utils.py").is_file():
        pytest.skip("%s ResultsDB or ResultsDB-Updater not found in %s"
                    % (SKIP_PREFIX, PEERS))


def fake_messages():
    d = UPDATER / "tests" / "fake_messages"
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


def updater_expected(msgs):
    """[{"posts": [payload...], "rejected": [reason...]}] per message."""
    p = subprocess.run(
        [PYTHON, str(ORACLE)], cwd=str(UPDATER), capture_output=True,
        input="".join(json.dumps(m) + "\n" for m in msgs).encode(),
        env={"PYTHONPATH": "%s:%s" % (UPDATER, PEERS / "fedmsg"),
             "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return [json.loads(ln) for ln in p.stdout.decode().splitlines()]


class ResultsDB:
    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.port = free_ports(1)[0]
        self.settings = self.dir / "settings.py"
        self.settings.write_text(
            "SQLALCHEMY_DATABASE_URI = 'sqlite:///%s/db.sqlite'\n"
            "HOST = '127.0.0.1'\nPORT = %d\nMESSAGE_BUS_PUBLISH = False\n"
            "MESSAGE_BUS_PUBLISH_TASKOTRON = False\n"
            # what CI messages' .error/.queued/.running become
            "ADDITIONAL_RESULT_OUTCOMES = ('ERROR', 'QUEUED', 'RUNNING')\n"
            % (self.dir, self.port))
        self.env = {"DEV": "true", "RESULTSDB_CONFIG": str(self.settings),
                    "PATH": "/usr/bin:/bin", "HOME": str(self.dir)}
        subprocess.run([PYTHON, "-c", "import resultsdb, "
                        "resultsdb.models.results\nwith resultsdb.app."
                        "app_context(): resultsdb.db.create_all()"],
                       cwd=str(RESULTSDB), env=self.env, check=True,
                       capture_output=True, timeout=60)
        self.proc = None
        self.url = "http://127.0.0.1:%d/api/v2.0" % self.port

    def start(self):
        self.log = open(self.dir / "resultsdb.log", "ab")
        self.proc = subprocess.Popen([PYTHON, "runapp.py"],
                                     cwd=str(RESULTSDB), env=self.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/results?limit=1")
                return self
            except OSError:
                if self.proc.poll() is not None or \
                        time.monotonic() > deadline:
                    raise RuntimeError("ResultsDB did not start: %s" % (
                        self.dir / "resultsdb.log").read_text()[-2000:])
                time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())

    def post(self, payload):
        req = urllib.request.Request(
            self.url + "/results", data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code != 400:
                raise
            return {"refused": json.loads(e.read()).get("message")}

    def results(self):
        return self.get("/results?limit=1000")["data"]

    def group(self, uuid):
        return self.get("/groups/%s" % uuid)
