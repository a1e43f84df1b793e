"""The package builds and installs offline with Debian's tools (python3-pip,
python3-setuptools, python3-wheel), and openedx-events' loaders find both
entry points in the installed copy."""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

from . import PACKAGE_DIR, STANDIN_DIR
from .support import unavailable

SMOKE = textwrap.dedent("""
    import sys
    from django.conf import settings
    settings.configure(EVENT_BUS_PRODUCER="edxbus_openedx.create_producer",
                       EVENT_BUS_CONSUMER="edxbus_openedx.EdxbusConsumer",
                       EDXBUS_INGEST_URL="http://127.0.0.1:9")
    import edxbus_openedx
    from openedx_events.event_bus import get_producer, make_single_consumer
    producer = get_producer()
    consumer = make_single_consumer(topic="course-catalog-info-changed", group_id="discovery")
    assert isinstance(producer, edxbus_openedx.EdxbusProducer), producer
    assert isinstance(consumer, edxbus_openedx.EdxbusConsumer), consumer
    print(edxbus_openedx.__file__)
    print(edxbus_openedx.__version__)
""")


class InstallTest(unittest.TestCase):
    def run_checked(self, args, **kwargs):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)
        self.assertEqual(proc.returncode, 0, f"{' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def test_offline_install_into_a_venv(self):
        for module in ("venv", "pip", "setuptools", "wheel"):
            if subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                              check=False).returncode != 0:
                unavailable(self, f"{sys.executable} has no {module} module "
                                  "(apt-get install python3-venv python3-pip python3-setuptools python3-wheel)")
        with tempfile.TemporaryDirectory() as tmp:
            # Build from a copy: setuptools builds in the source tree and
            # would leave build/ and *.egg-info in the repository.
            source = os.path.join(tmp, "edxbus_openedx")
            shutil.copytree(PACKAGE_DIR, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info",
                                                                                "__pycache__"))
            venv = os.path.join(tmp, "venv")
            self.run_checked([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
            python = os.path.join(venv, "bin", "python")
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
            self.run_checked([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                              source], env=env)

            show = self.run_checked([python, "-m", "pip", "show", "-f", "edxbus-openedx"], env=env).stdout
            self.assertIn("License: Apache-2.0", show)
            self.assertIn("Requires: Django, openedx-events", show)
            self.assertIn("edxbus_openedx/consumer.py", show)
            self.assertNotIn("tests/", show, "the tests and the stand-in are not installed")
            self.assertIn("LICENSE", show)

            # The stand-in plays openedx-events; the package itself must come
            # from the venv's site-packages, not from src/.
            env["PYTHONPATH"] = STANDIN_DIR
            smoke = self.run_checked([python, "-c", SMOKE], env=env, cwd=tmp).stdout.splitlines()
            self.assertIn(os.path.join(venv, "lib"), smoke[0])
            self.assertIn("site-packages", smoke[0])
            self.assertIn(f"Version: {smoke[1]}", show, "pyproject.toml and __version__ agree")


if __name__ == "__main__":
    unittest.main()
