"""The pipeline's path filters: for changed paths, exactly the services it builds and deploys.

scripts/changed-services is the one place the filters live; these tests hold it to a table of
changes, to Package.swift's target dependencies, and check that the workflow really takes its
matrix from it.
"""
import json
import os
import subprocess
import tempfile
import unittest

from support import ROOT, load_yaml, run, services_table

SERVERS = {"gateway", "model-registry", "scheduler", "quota"}
EVERYTHING = SERVERS | {"maasctl"}


def selected(*paths):
    """The services the pipeline runs for a change to `paths`."""
    output = subprocess.run(
        [os.path.join(ROOT, "scripts", "changed-services"), "--paths"],
        input="\n".join(paths) + "\n", capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout
    return set(output.split())


class PathFilterTable(unittest.TestCase):
    CASES = [
        ("a quota source file runs the quota job alone", ["Sources/Quota/Domain/QuotaPolicy.swift"], {"quota"}),
        ("the quota executable runs the quota job alone", ["Sources/maas-quota/main.swift"], {"quota"}),
        ("the quota image runs the quota job alone", ["services/quota/Dockerfile"], {"quota"}),
        ("the quota manifests run the quota job alone", ["k8s/quota/base/deployment.yaml"], {"quota"}),
        ("a quota overlay runs the quota job alone", ["k8s/quota/overlays/production/kustomization.yaml"], {"quota"}),
        ("the quota tests run the quota job alone", ["Tests/QuotaTests/BillingTests.swift"], {"quota"}),
        ("the registry's folders all name the model-registry job",
         ["Sources/Registry/RegistryService.swift", "services/model-registry/Dockerfile",
          "k8s/model-registry/base/config.env", "Sources/maas-registry/main.swift"], {"model-registry"}),
        ("the scheduler's source runs the scheduler job", ["Sources/Scheduler/SchedulerService.swift"], {"scheduler"}),
        ("the gateway's manifests run the gateway job", ["k8s/gateway/base/networkpolicy.yaml"], {"gateway"}),
        ("the command-line client builds its image alone", ["Sources/maasctl/Maasctl.swift"], {"maasctl"}),
        ("the shared quota client runs its two users", ["Sources/QuotaClient/GRPCQuotaGate.swift"],
         {"model-registry", "scheduler"}),
        ("the contracts run everything", ["proto/maas/quota/v1/quota.proto"], EVERYTHING),
        ("the generated contracts run everything", ["Sources/MaaSContracts/maas_quota_v1_quota.pb.swift"], EVERYTHING),
        ("the transport runs everything", ["Sources/GRPCShimTransport/ClientCall.swift"], EVERYTHING),
        ("the C++ shim runs everything", ["Sources/CGRPCShim/server.cc"], EVERYTHING),
        ("the interoperability tests run everything that speaks gRPC", ["Tests/Interop/echo_client.py"], EVERYTHING),
        ("the runtime runs the four servers, not the client", ["Sources/MaaSRuntime/Lifecycle/MaaSServer.swift"], SERVERS),
        ("the Postgres client runs the four servers", ["Sources/Postgres/Pool.swift"], SERVERS),
        ("the migrations run the four servers", ["Sources/PostgresMigrations/Migrator.swift"], SERVERS),
        ("libpq's module map runs the four servers", ["Sources/CLibPQ/module.modulemap"], SERVERS),
        ("the runtime's tests run the four servers", ["Tests/MaaSRuntimeTests/ConfigurationTests.swift"], SERVERS),
        ("the package manifest runs everything", ["Package.swift"], EVERYTHING),
        ("the pipeline itself runs everything", [".github/workflows/service.yml"], EVERYTHING),
        ("the path filters run everything", ["scripts/changed-services"], EVERYTHING),
        ("the deploy script runs everything", ["scripts/deploy"], EVERYTHING),
        ("the development Postgres redeploys the servers to staging", ["k8s/postgres/statefulset.yaml"], SERVERS),
        ("the autoscaling component runs the servers", ["k8s/components/inflight-calls-metric/kustomization.yaml"],
         SERVERS),
        ("two services' folders run those two", ["Sources/Quota/QuotaService.swift", "k8s/gateway/base/hpa.yaml"],
         {"quota", "gateway"}),
        ("documentation ships nothing", ["README.md", "k8s/README.md", "services/README.md"], set()),
        ("benchmarks, fixtures and development scripts ship nothing",
         ["Benchmarks/Package.swift", "Sources/MaaSTesting/PostgresFixture.swift", "Sources/maas-echo-server/main.swift",
          "Tests/MaaSTestingTests/PSQL.swift", "scripts/run-local", "scripts/postgres", "Makefile", "Tests/Deploy/support.py"],
         set()),
        ("the whole-suite overlays ship nothing on their own", ["k8s/overlays/staging/kustomization.yaml"], set()),
        ("no change ships nothing", [], set()),
    ]

    def test_each_change_selects_exactly_the_expected_services(self):
        for name, paths, expected in self.CASES:
            with self.subTest(name):
                self.assertEqual(selected(*paths), expected)


class PathFiltersFollowPackageSwift(unittest.TestCase):
    """A change to a target rebuilds exactly the services whose executable links it."""

    @classmethod
    def setUpClass(cls):
        # A scratch path of its own: the package's .build may be locked by a build under way.
        with tempfile.TemporaryDirectory() as scratch:
            package = json.loads(run("swift", "package", "--scratch-path", scratch, "dump-package"))
        cls.targets = {}
        for target in package["targets"]:
            names = []
            for dependency in target["dependencies"]:
                for kind in ("byName", "target"):
                    if kind in dependency:
                        names.append(dependency[kind][0])
            cls.targets[target["name"]] = (target["type"], names)

    def closure(self, name):
        seen, stack = {name}, [name]
        while stack:
            for dependency in self.targets.get(stack.pop(), ("", []))[1]:
                if dependency in self.targets and dependency not in seen:
                    seen.add(dependency)
                    stack.append(dependency)
        return seen

    def test_a_change_to_a_target_selects_the_services_that_link_it(self):
        users = {target: set() for target in self.targets}
        for row in services_table():
            for target in self.closure(row["program"]):
                users[target].add(row["service"])
        for target, (kind, _) in self.targets.items():
            if kind == "test":
                continue
            with self.subTest(target):
                self.assertEqual(selected(f"Sources/{target}/File.swift"), users[target])
                # A target's tests run with it.
                if f"{target}Tests" in self.targets:
                    self.assertEqual(selected(f"Tests/{target}Tests/File.swift"), users[target])

    def test_every_source_folder_is_a_target_the_filters_were_checked_for(self):
        folders = set(os.listdir(os.path.join(ROOT, "Sources")))
        self.assertEqual(folders, {name for name, (kind, _) in self.targets.items() if kind != "test"})

    def test_each_service_program_is_an_executable_of_the_package(self):
        for row in services_table():
            with self.subTest(row["service"]):
                self.assertEqual(self.targets[row["program"]][0], "executable")


class PathFiltersOverGit(unittest.TestCase):
    def test_a_base_with_nothing_to_compare_selects_everything(self):
        for base in ["0000000000000000000000000000000000000000", "", "no-such-commit"]:
            with self.subTest(base=base):
                self.assertEqual(set(run("scripts/changed-services", "--base", base).split()), EVERYTHING)

    def test_a_commit_compared_with_itself_selects_nothing(self):
        self.assertEqual(run("scripts/changed-services", "--base", "HEAD", "--head", "HEAD").split(), [])

    def test_the_json_matrix_carries_each_services_row(self):
        matrix = json.loads(run("scripts/changed-services", "--json", "--only", "quota", "maasctl"))
        rows = {row["service"]: row for row in services_table()}
        self.assertEqual(matrix, [rows["quota"], rows["maasctl"]])
        self.assertEqual(json.loads(run("scripts/changed-services", "--json", "--only", "all")),
                         services_table())


class WorkflowTakesItsMatrixFromTheFilters(unittest.TestCase):
    def setUp(self):
        self.ci = load_yaml(".github/workflows/ci.yml")
        self.service = load_yaml(".github/workflows/service.yml")

    def test_the_triggers_have_no_path_filters_of_their_own(self):
        triggers = self.ci.get("on", self.ci.get(True))
        for event in ("push", "pull_request"):
            self.assertNotIn("paths", triggers[event] or {})
            self.assertNotIn("paths-ignore", triggers[event] or {})

    def test_the_matrix_is_the_scripts_output_and_each_leg_calls_the_reusable_workflow(self):
        jobs = self.ci["jobs"]
        commands = "\n".join(step.get("run", "") for step in jobs["changes"]["steps"])
        self.assertIn("scripts/changed-services --json", commands)
        leg = jobs["service"]
        self.assertEqual(leg["uses"], "./.github/workflows/service.yml")
        self.assertEqual(leg["strategy"]["matrix"]["include"], "${{ fromJSON(needs.changes.outputs.matrix) }}")
        for field in ("service", "program", "prefix", "kind", "tests"):
            self.assertEqual(leg["with"][field], "${{ matrix.%s }}" % field)
        inputs = self.service.get("on", self.service.get(True))["workflow_call"]["inputs"]
        self.assertEqual(set(leg["with"]), set(inputs))

    def test_every_selected_service_has_what_its_jobs_build_and_deploy(self):
        jobs = self.service["jobs"]
        build = next(step for step in jobs["image"]["steps"] if step.get("uses", "").startswith("docker/build-push"))
        self.assertEqual(build["with"]["file"], "services/${{ inputs.service }}/Dockerfile")
        for row in services_table():
            with self.subTest(row["service"]):
                self.assertTrue(os.path.isfile(os.path.join(ROOT, "services", row["service"], "Dockerfile")))
                if row["kind"] == "server":
                    for environment in ("staging", "production"):
                        self.assertTrue(os.path.isdir(os.path.join(ROOT, "k8s", row["service"], "overlays", environment)))

    def test_stages_run_in_order_and_production_waits_for_approval(self):
        jobs = self.service["jobs"]
        self.assertEqual(jobs["test"]["needs"], "lint")
        self.assertIn("postgres", jobs["test"]["services"])
        self.assertEqual(jobs["image"]["needs"], "test")
        self.assertEqual(jobs["deploy-staging"]["needs"], "image")
        self.assertEqual(set(jobs["deploy-production"]["needs"]), {"image", "deploy-staging"})
        self.assertEqual(jobs["deploy-staging"]["environment"], "staging")
        self.assertEqual(jobs["deploy-production"]["environment"], "production")
        lint = "\n".join(step.get("run", "") for step in jobs["lint"]["steps"])
        self.assertIn("scripts/lint-deploy", lint)
        for job in ("deploy-staging", "deploy-production"):
            deploy = "\n".join(step.get("run", "") for step in jobs[job]["steps"])
            self.assertIn("scripts/deploy", deploy)


if __name__ == "__main__":
    unittest.main()
