"""bundle.publish under ``kill -9``: a child process publishes bundle after bundle and is killed
at random instants; after every kill the bundle (and its previous one) must load, sealed and whole."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_manifest import build, content_dirs, manifest

from bundle.manifest import load_bundle

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# The child publishes versions 1, 2, 3... (a 2 MB model each, so writing and fsyncing take
# long enough for kills to land in every step) and says which one it starts next.
CHILD = """
import os, sys
from test_manifest import build
dest, start = sys.argv[1], int(sys.argv[2])
for v in range(start, start + 1000):
    print(v, flush=True)
    build(__import__("pathlib").Path(dest), model=b"v%d:" % v + os.urandom(2 << 20))
"""


def version(bundle_dir) -> int:
    return int(load_bundle(bundle_dir).model_path.read_bytes().split(b":")[0][1:])


def test_kill_9_while_publishing_never_leaves_a_broken_bundle(tmp_path):
    dest = tmp_path / "bundle"
    build(dest, model=b"v0:")
    rng = random.Random(13)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    last, now, kills = 0, 0, 0
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(dest), str(last + 1)], env=env, stdout=subprocess.PIPE, text=True
        )
        started = int(child.stdout.readline())  # imports done, the first publish is under way
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        begun = [started, *map(int, child.stdout.read().split())]
        child.wait()
        kills += child.returncode == -signal.SIGKILL
        # whatever the instant: the bundle is the one being published or the one before it
        before = begun[-2] if len(begun) > 1 else now
        now = version(dest)
        assert now in (begun[-1], before), (now, begun, before)
        if (dest.parent / ".bundle.previous").exists():
            assert version(dest.parent / ".bundle.previous") < now
        last = max(begun)
    assert kills >= 6  # the loop really killed children mid-publish, not after they finished
    build(dest, model=b"v9999:")
    assert version(dest) == 9999
    # leftovers of the kills (orphan content directories) are gone; staging ones are inert
    assert len([d for d in content_dirs(tmp_path) if ".staging-" not in d]) == 2
    assert manifest()["classes"] == load_bundle(dest).manifest["classes"]
