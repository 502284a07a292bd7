"""Fedora's real post-receive hook (fedora-messaging-git-hook) beside
fedmsg-git-hook, for tests/integration/test_git_hook.py.

Run as a post-receive hook (stdin: git's ref lines), with the peers
fedora-messaging and fedora-messaging-git-hook on PYTHONPATH:

    git_hook_peer.py OUT.jsonl URL_TEMPLATE WITH_NAMESPACE

It opens the repository as the hook's cli.main() does and runs the hook's
own process(); only its last step, publishing to an AMQP broker, is
replaced: each CommitV1 message the hook makes is validated against its
schema and its body appended to OUT.jsonl, one JSON line per message.

    git_hook_peer.py --serve REQ RESP OUT.jsonl URL_TEMPLATE WITH_NAMESPACE

The same for many pushes in one process (Python and fedora-messaging are
imported once): each request written to the FIFO REQ is the hook's
working directory (the bare repository, GIT_DIR=".") on a line, then
git's ref lines; one process() call per request, as one hook run per
push; then "ok" (or the error) is written to the FIFO RESP.  It exits
when its standard input closes.
"""

import json
import os
import sys
import threading
import traceback

import pygit2
from fedora_messaging_git_hook import hook
from fedora_messaging_git_hook_messages import CommitV1


def serve(req, resp, config):
    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    while True:
        with open(req) as f:
            text = f.read()
        if not text:
            continue
        cwd, _, lines = text.partition("\n")
        status = "ok"
        try:
            os.chdir(cwd)
            os.environ["GIT_DIR"] = "."
            repo = pygit2.Repository(os.path.abspath("."))
            hook.process(repo, config, lines.splitlines(keepends=True))
        except Exception:  # noqa: BLE001 - reported to the hook script
            status = traceback.format_exc().replace("\n", " | ")
        with open(resp, "w") as f:
            f.write(status + "\n")


def main():
    req = resp = None
    if sys.argv[1] == "--serve":
        req, resp = sys.argv[2:4]
        del sys.argv[1:4]
    out, url_template, with_namespace = sys.argv[1:4]
    config = {"with_namespace": with_namespace == "true",
              "url_template": url_template or None}

    def publish(commit):
        # What hook.publish() hands fedora_messaging.api.publish().
        message = CommitV1(body=dict(commit=commit, agent=commit["username"]))
        message.validate()
        with open(out, "a") as f:
            f.write(json.dumps(message.body) + "\n")

    hook.publish = publish
    if req:
        serve(req, resp, config)
    repo = pygit2.Repository(os.path.abspath(os.environ["GIT_DIR"]))
    hook.process(repo, config, list(sys.stdin.readlines()))


if __name__ == "__main__":
    main()
