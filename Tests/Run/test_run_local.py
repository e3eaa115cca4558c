"""`make run` end to end, as a newcomer meets it: scripts/run-local brings the suite up (its own
Postgres, the four services, the demo fleet and tenant), the commands it prints work as printed,
SIGTERM stops everything, and a second run finds what the first one made; Ctrl-C stops that one.

The suite runs in a temporary MAAS_RUN_DIR on free ports, so a developer's own `make run` (in
.run, on the default ports) is left alone. Run by `make test-run` after the build."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
READY_SECONDS = 300
STOP_SECONDS = 120


def reserve_port():
    """A socket holding a free port on 127.0.0.1 for as long as it is open, without listening.

    The suite runs twice on the same ports, and in between they would be free: Linux could give
    one to an outgoing connection (they are in its ephemeral range), and the second run could
    not listen there. Bound with SO_REUSEADDR, the port is refused to any other socket and to
    outgoing connections, but not to a server that also sets SO_REUSEADDR (Postgres, grpc and
    the metrics endpoints do)."""
    reservation = socket.socket()
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.bind(("127.0.0.1", 0))
    return reservation


def session_members(session):
    """The pids of live processes in `session` (Linux: field 6 of /proc/<pid>/stat)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (after the command's name): a zombie has already ended.
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(entry))
    return members


def listening(port):
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Suite:
    """One `scripts/run-local` process, its output collected as it comes."""

    def __init__(self, environment):
        self.lines = []
        self.changed = threading.Condition()
        self.process = subprocess.Popen(
            [os.path.join(ROOT, "scripts", "run-local")], cwd=ROOT, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True)
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    @property
    def output(self):
        with self.changed:
            return "\n".join(self.lines)

    def wait_for(self, text, seconds):
        """Waits until a line holds `text`; fails with the output when the script ends first."""
        deadline = time.monotonic() + seconds
        with self.changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"scripts/run-local never printed {text!r}; its output:\n" + "\n".join(self.lines))
                self.changed.wait(min(left, 1))

    def stop(self, ctrl_c=False):
        """SIGTERM to the script, as `kill` or a service manager sends it; or, with `ctrl_c`,
        SIGINT to its whole process group, as a terminal's Ctrl-C does (the servers get it too).
        Either way the script stops what it started."""
        if self.process.poll() is None:
            if ctrl_c:
                os.killpg(self.process.pid, signal.SIGINT)
            else:
                self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError("scripts/run-local did not stop within 120 s of SIGTERM; its output:\n" + self.output)
        finally:
            self.process.stdout.close()


class MakeRunTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.run_dir = tempfile.mkdtemp(prefix="maas-run-")
        cls.reservations = {name: reserve_port() for name in (
            "POSTGRES", "ECHO", "GATEWAY", "REGISTRY", "SCHEDULER", "QUOTA",
            "GATEWAY_METRICS", "REGISTRY_METRICS", "SCHEDULER_METRICS", "QUOTA_METRICS")}
        cls.ports = {name: reservation.getsockname()[1] for name, reservation in cls.reservations.items()}
        environment = {name: value for name, value in os.environ.items() if not name.startswith("MAAS_")}
        environment["MAAS_RUN_DIR"] = cls.run_dir
        for name, port in cls.ports.items():
            environment[f"MAAS_{name}_PORT"] = str(port)
        cls.environment = environment

    @classmethod
    def tearDownClass(cls):
        subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "destroy", "--dir",
                        os.path.join(cls.run_dir, "postgres"), "--yes"], cwd=ROOT, capture_output=True)
        shutil.rmtree(cls.run_dir, ignore_errors=True)
        for reservation in cls.reservations.values():
            reservation.close()

    def shell(self, script, **extra):
        """Runs `script` with bash from the repository root, as a reader pastes it; fails with its output."""
        environment = dict(self.environment, **extra)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=environment,
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, f"{script}\nexited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def assertStopped(self, suite, ctrl_c=False):
        suite.stop(ctrl_c=ctrl_c)
        self.assertIn("Stopped.", suite.output)
        # The script ran in a session of its own: nothing it started (servers, the fleet agent)
        # may outlive it. Postgres is the exception, in its own session, and checked below.
        self.assertEqual(session_members(suite.process.pid), [], "processes of the run outlived it")
        for name, port in self.ports.items():
            self.assertFalse(listening(port), f"{name} still listens on {port} after the stop")
        status = subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "status", "--dir",
                                 os.path.join(self.run_dir, "postgres")], cwd=ROOT, capture_output=True)
        self.assertEqual(status.returncode, 3, "the run's Postgres is still running after the stop")

    @staticmethod
    def demo_tenant(output):
        found = re.search(r'\n  demo +tenant "demo" \(([0-9a-f-]{36})\)', output)
        if not found:
            raise AssertionError("no demo tenant in the output:\n" + output)
        return found.group(1)

    @staticmethod
    def printed_commands(output, start, end):
        """The commands printed between a line holding `start` and one holding `end`, with
        continued lines joined."""
        block = output.split(start, 1)[1].split(end, 1)[0]
        commands, pending = [], ""
        for line in block.splitlines()[1:]:
            if not line.startswith("  "):
                continue
            pending += line.strip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            commands.append(pending)
            pending = ""
        return commands

    def test_the_suite_comes_up_answers_the_printed_commands_stops_and_keeps_its_data(self):
        # The first run stops on SIGTERM, the second on Ctrl-C.
        first = Suite(self.environment)
        try:
            first.wait_for("Ctrl-C stops everything.", READY_SECONDS)
            output = first.output
            for server in ("gateway", "registry", "scheduler", "quota"):
                self.assertRegex(output, rf"\n  {server} +127\.0\.0\.1:{self.ports[server.upper()]} +SERVING")
            self.assertRegex(output, r"\n  fleet +registered 6 nodes: 16 x H100-80GB, 16 x L4-24GB from services/scheduler/demo/fleet.yaml")

            # The demo tenant's commands, exactly as printed, in one shell (the export carries on).
            tenant = self.demo_tenant(output)
            with open(os.path.join(self.run_dir, "demo-token")) as file:
                token = file.read()
            demo = self.printed_commands(output, "Try it as the demo tenant", "As the operator")
            self.assertEqual(len(demo), 7, demo)
            listing = self.shell("\n".join(demo))
            self.assertIn("llama-3-8b", listing)
            export, cli = demo[0], demo[1].split()[0]
            model = json.loads(self.shell(f"{export}\n{cli} models get llama-3-8b --output json"))
            self.assertEqual(model.get("aliases"), {"production": "1.0.0"}, model)

            operator = self.printed_commands(output, "As the operator", "The GPU fleet")
            self.assertEqual(len(operator), 2, operator)
            # Printed after the demo's, for the same shell: the export above still holds.
            self.assertIn("demo", self.shell(f"{export}\n{operator[0]}"))
            self.shell(f"{export}\n{operator[1]}")

            fleet = self.printed_commands(output, "The GPU fleet", "Other servers")
            self.assertEqual(len(fleet), 1, fleet)
            capacity = self.shell(fleet[0])
            self.assertIn("H100-80GB", capacity)
            self.assertIn("L4-24GB", capacity)

            # The printed metrics endpoint counted the demo's calls.
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['GATEWAY_METRICS']}/metrics", timeout=10) as answer:
                metrics = answer.read().decode()
            self.assertRegex(metrics, r'grpc_server_handled_total\{[^}]*grpc_method="CreateModel"[^}]*grpc_code="OK"[^}]*\} 1\b'
                             r'|grpc_server_handled_total\{[^}]*grpc_code="OK"[^}]*grpc_method="CreateModel"[^}]*\} 1\b')
        finally:
            first.stop()
        self.assertStopped(first)

        # Run again on the same directory: the cluster, the demo tenant and its key, the model
        # and the operator's quota change are all still there.
        second = Suite(self.environment)
        try:
            second.wait_for("Ctrl-C stops everything.", READY_SECONDS)
            demo = self.printed_commands(second.output, "Try it as the demo tenant", "As the operator")
            export, cli = demo[0], demo[1].split()[0]
            self.assertIn("llama-3-8b", self.shell(f"{export}\n{cli} models list"))
            self.assertIn("1.0.0", self.shell(f"{export}\n{cli} versions list llama-3-8b"))
            quota = json.loads(self.shell(f"{export}\n{cli} quota get --output json"))
            by_resource = {entry["resource"]: entry for entry in quota["resources"]}
            self.assertEqual(by_resource["RESOURCE_MODELS"]["limit"]["value"], "5", quota)
            self.assertEqual(by_resource["RESOURCE_MODELS"]["used"], "1", quota)
            self.assertEqual(by_resource["RESOURCE_STORAGE_BYTES"]["used"], "16000000000", quota)
            self.assertEqual(self.demo_tenant(second.output), tenant, "the second run made another demo tenant")
            with open(os.path.join(self.run_dir, "demo-token")) as file:
                self.assertEqual(file.read(), token, "the second run made another demo key")
        finally:
            second.stop(ctrl_c=True)
        self.assertStopped(second, ctrl_c=True)


if __name__ == "__main__":
    unittest.main()
