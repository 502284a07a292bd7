"""Fedora's real post-receive hook (fedora-messaging-git-hook) beside
fedmsg-git-hook, for tests/integration/test_git_hook.py.

Run as a post-receive hook (stdin: git's ref lines), with the peers
fedora-messaging and fedora-messaging-git-hook on PYTHONPATH:

    git_hook_peer.py OUT.jsonl URL_TEMPLATE WITH_NAMESPACE

It opens the repository as the hook's cli.main() does and runs the hook's
own process(); only its last step, publishing to an AMQP broker, is
replaced: each CommitV1 message the hook makes is validated against its
schema and its body appended to OUT.jsonl, one JSON line per message.
"""

import json
import os
import sys

import pygit2
from fedora_messaging_git_hook import hook
from fedora_messaging_git_hook_messages import CommitV1


def main():
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
    repo = pygit2.Repository(os.path.abspath(os.environ["GIT_DIR"]))
    hook.process(repo, config, list(sys.stdin.readlines()))


if __name__ == "__main__":
    main()
