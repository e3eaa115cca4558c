"""scripts/deploy against a stand-in kubectl: what it applies, and that a failed rollout or smoke
test is rolled back. No cluster here, so the stand-in answers for the cluster and records every
call; `kubectl kustomize` is the real one."""
import os
import shutil
import stat
import subprocess
import tempfile
import textwrap
import unittest

import yaml

from support import ROOT

FAKE_KUBECTL = textwrap.dedent("""\
    #!/usr/bin/env python3
    # Stands in for a cluster: records each call, renders with the real kubectl, and answers the
    # rest as FAKE_* variables say.
    import os, subprocess, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(" ".join(args) + "\\n")
    while args[:1] == ["--namespace"]:
        args = args[2:]
    if args[:1] == ["kustomize"]:
        sys.exit(subprocess.call([os.environ["REAL_KUBECTL"]] + args))
    if args[:2] == ["apply", "-f"]:
        data = sys.stdin.read() if args[2] == "-" else open(args[2]).read()
        with open(os.environ["FAKE_APPLIED"], "a") as applied:
            applied.write(data + "\\n---\\n")
        sys.exit(0)
    if args[:1] == ["create"]:
        print("kind: Placeholder\\nmetadata:\\n  name: placeholder")
        sys.exit(0)
    if args[:2] == ["get", "deployment"]:
        sys.exit(0 if os.environ.get("FAKE_EXISTING") == "1" else 1)
    if args[:2] == ["get", "pods"]:
        print("maas-quota-new-1   <none>")
        print("maas-quota-old-1   2026-11-22T10:00:00Z")
        sys.exit(0)
    if args[:2] == ["rollout", "status"]:
        failing = os.environ.get("FAKE_ROLLOUT") == "fail" and "undo" not in open(os.environ["FAKE_LOG"]).read()
        sys.exit(1 if failing else 0)
    if args[:1] == ["exec"]:
        sys.exit(1 if os.environ.get("FAKE_HEALTH") == "fail" else 0)
    sys.exit(0)
    """)


class DeployScript(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.scratch)
        bin_dir = os.path.join(self.scratch, "bin")
        os.mkdir(bin_dir)
        kubectl = os.path.join(bin_dir, "kubectl")
        with open(kubectl, "w") as file:
            file.write(FAKE_KUBECTL)
        os.chmod(kubectl, os.stat(kubectl).st_mode | stat.S_IEXEC)
        self.log = os.path.join(self.scratch, "calls")
        self.applied = os.path.join(self.scratch, "applied")
        open(self.log, "w").close()
        open(self.applied, "w").close()
        self.environment = dict(
            os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"], REAL_KUBECTL=shutil.which("kubectl"),
            FAKE_LOG=self.log, FAKE_APPLIED=self.applied, FAKE_EXISTING="1")

    def deploy(self, *arguments, **fake):
        environment = dict(self.environment, **{f"FAKE_{k.upper()}": v for k, v in fake.items()})
        result = subprocess.run([os.path.join(ROOT, "scripts", "deploy"), *arguments], cwd=ROOT,
                                env=environment, capture_output=True, text=True)
        with open(self.log) as file:
            calls = file.read().splitlines()
        return result, calls

    def applied_objects(self):
        with open(self.applied) as file:
            return [doc for doc in yaml.safe_load_all(file) if doc]

    def test_a_good_rollout_applies_the_image_and_checks_only_the_new_pods(self):
        result, calls = self.deploy("quota", "production", "--image", "ghcr.io/acme/maas-quota:abc123")
        self.assertEqual(result.returncode, 0, result.stderr)
        deployment = next(o for o in self.applied_objects() if o["kind"] == "Deployment")
        images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]
                  + deployment["spec"]["template"]["spec"]["initContainers"]}
        self.assertEqual(images, {"ghcr.io/acme/maas-quota:abc123"})
        self.assertEqual(deployment["metadata"]["namespace"], "maas")
        self.assertIn("--namespace maas rollout status deployment/maas-quota --timeout=5m", calls)
        self.assertIn("--namespace maas exec maas-quota-new-1 -c maas-quota -- maas-quota health", calls)
        self.assertFalse(any("maas-quota-old-1" in call for call in calls))
        self.assertFalse(any("rollout undo" in call for call in calls))
        self.assertFalse(any("statefulset" in call for call in calls), "production has no development Postgres")

    def test_a_rollout_that_does_not_finish_is_rolled_back(self):
        result, calls = self.deploy("quota", "production", "--tag", "abc123", rollout="fail")
        self.assertEqual(result.returncode, 1)
        self.assertIn("--namespace maas rollout undo deployment/maas-quota", calls)
        self.assertFalse(any(call.startswith("--namespace maas exec") for call in calls))

    def test_a_failed_smoke_test_is_rolled_back(self):
        result, calls = self.deploy("quota", "staging", "--tag", "abc123", health="fail")
        self.assertEqual(result.returncode, 1)
        self.assertIn("--namespace maas-staging rollout undo deployment/maas-quota", calls)

    def test_a_first_deployment_has_nothing_to_roll_back_to(self):
        result, calls = self.deploy("quota", "staging", "--tag", "abc123", health="fail", existing="0")
        self.assertEqual(result.returncode, 1)
        self.assertFalse(any("rollout undo" in call for call in calls))
        self.assertIn("no previous revision", result.stderr)

    def test_staging_brings_the_development_postgres_and_the_secrets(self):
        secrets = os.path.join(self.scratch, "quota.env")
        with open(secrets, "w") as file:
            file.write("MAAS_QUOTA_DATABASE_URL=postgresql://maas_app:pw@maas-postgres/maas\n")
        empty = os.path.join(self.scratch, "postgres.env")
        with open(empty, "w") as file:
            file.write("\n")
        result, calls = self.deploy("quota", "staging", "--tag", "abc123", "--secrets", secrets,
                                    "--postgres-secrets", empty)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"--namespace maas-staging create secret generic maas-quota --from-env-file={secrets} "
                      "--dry-run=client -o yaml", calls)
        self.assertFalse(any("secret generic maas-postgres" in call for call in calls), "an empty file sets nothing")
        self.assertIn("--namespace maas-staging rollout status statefulset/maas-postgres --timeout=5m", calls)
        kinds = {(o["kind"], o["metadata"]["name"]) for o in self.applied_objects()}
        self.assertIn(("StatefulSet", "maas-postgres"), kinds)

    def test_a_dry_run_prints_the_manifests_and_touches_no_cluster(self):
        result, calls = self.deploy("model-registry", "staging", "--dry-run", "--tag", "v1")
        self.assertEqual(result.returncode, 0, result.stderr)
        objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        self.assertEqual(deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                         "registry.example.com/maas/maas-registry:v1")
        self.assertTrue(all(call.startswith("kustomize") or call.startswith("version") for call in calls), calls)

    def test_bad_usage_is_refused_before_anything_runs(self):
        for arguments in [("quota",), ("quota", "qa"), ("maasctl", "staging"), ("all", "staging", "--image", "x:1")]:
            with self.subTest(arguments=arguments):
                result, calls = self.deploy(*arguments)
                self.assertEqual(result.returncode, 2)
                self.assertEqual([c for c in calls if not c.startswith("version")], [])


if __name__ == "__main__":
    unittest.main()
