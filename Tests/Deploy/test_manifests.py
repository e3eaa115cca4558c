"""The rendered manifests and the images agree with the binaries they run.

Each server binary says what it reads and serves (`maas-<service> config`, JSON); each overlay is
rendered with `kubectl kustomize` as the pipeline renders it. The ports, probes, health service,
variables, secrets, migrate command and drain time in the manifests must be the binary's own.
"""
import math
import os
import re
import unittest

from support import ROOT, describe, find, render, servers

ENVIRONMENTS = ("staging", "production")
# What a secret reference stands for when the binary checks the configuration: long enough for
# every secret's minimum length, and a URL only has to be non-empty text.
PLACEHOLDER_SECRET = "placeholder-value-of-a-kubernetes-secret-0123456789"
# Calls the code does not make yet but the design has coming, allowed through the network
# policies ahead of time: the gateway will call the scheduler for deployments (DESIGN.md).
PLANNED_CALLS = {("gateway", "scheduler")}


def pod_environment(container, objects):
    """The variables a container starts with: its ConfigMaps, then its own entries (which win),
    secrets as the placeholder. Also returns the secret references, name -> (secret, key)."""
    environment, secrets = {}, {}
    for source in container.get("envFrom", []):
        config_map = find(objects, "ConfigMap", source["configMapRef"]["name"])
        environment.update(config_map.get("data", {}))
    for entry in container.get("env", []):
        if "value" in entry:
            environment[entry["name"]] = entry["value"]
        else:
            reference = entry["valueFrom"]["secretKeyRef"]
            secrets[entry["name"]] = (reference["name"], reference["key"])
            environment[entry["name"]] = PLACEHOLDER_SECRET
    return environment, secrets


class Rendered:
    """One service's overlay rendered, with the pieces the tests look at."""

    def __init__(self, row, environment):
        self.row = row
        self.program = row["program"]
        self.objects = render(f"k8s/{row['service']}/overlays/{environment}")
        self.deployment = find(self.objects, "Deployment", self.program)
        self.pod = self.deployment["spec"]["template"]["spec"]
        self.server = next(c for c in self.pod["containers"] if c["name"] == self.program)
        self.migrate = next(c for c in self.pod.get("initContainers", []) if c["name"] == "migrate")


class ManifestsAgreeWithTheBinaries(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.defaults = {row["service"]: describe(row["program"]) for row in servers()}
        cls.rendered = {(row["service"], env): Rendered(row, env) for row in servers() for env in ENVIRONMENTS}

    def cases(self):
        """(subtest labels, rendered overlay, the binary's description) for each overlay."""
        return [(dict(service=service, environment=environment), rendered, self.defaults[service])
                for (service, environment), rendered in self.rendered.items()]

    def test_every_variable_set_is_one_the_binary_reads(self):
        for labels, rendered, described in self.cases():
            with self.subTest(**labels):
                known = {variable["name"] for variable in described["variables"]}
                for container in (rendered.server, rendered.migrate):
                    environment, _ = pod_environment(container, rendered.objects)
                    unknown = sorted(name for name in environment if name.startswith("MAAS_") and name not in known)
                    self.assertEqual(unknown, [], f"{container['name']} sets variables {rendered.program} never reads")

    def test_the_required_variables_are_set_and_the_binary_accepts_the_configuration(self):
        for labels, rendered, described in self.cases():
            with self.subTest(**labels):
                required = {variable["name"] for variable in described["variables"] if variable["required"]}
                self.assertIn(f"{described['prefix']}_DATABASE_URL", required)
                for container in (rendered.server, rendered.migrate):
                    environment, _ = pod_environment(container, rendered.objects)
                    self.assertLessEqual(required, set(environment), container["name"])
                    problems = describe(rendered.program, environment)["problems"]
                    self.assertEqual(problems, [], f"{rendered.program} refuses what {container['name']} is given")

    def test_secrets_come_from_the_services_secret_under_their_own_names(self):
        for labels, rendered, _ in self.cases():
            with self.subTest(**labels):
                for container in (rendered.server, rendered.migrate):
                    _, secrets = pod_environment(container, rendered.objects)
                    for variable, (secret, key) in secrets.items():
                        self.assertEqual((secret, key), (rendered.program, variable))
                _, server_secrets = pod_environment(rendered.server, rendered.objects)
                self.assertNotIn(f"{rendered.row['prefix']}_MIGRATION_DATABASE_URL", server_secrets,
                                 "the serving container must not hold the schema owner's credentials")

    def test_the_server_runs_the_serve_command_on_the_binarys_port(self):
        for labels, rendered, _ in self.cases():
            with self.subTest(**labels):
                environment, _ = pod_environment(rendered.server, rendered.objects)
                described = describe(rendered.program, environment)
                self.assertEqual(rendered.server["command"], [rendered.program] + described["commands"]["serve"])
                ports = {port["name"]: port["containerPort"] for port in rendered.server["ports"]}
                metrics_port = int(environment[f"{described['prefix']}_METRICS_PORT"])
                self.assertEqual(ports, {"grpc": described["port"], "metrics": metrics_port})
                self.assertEqual(described["port"], described["defaultPort"])

    def test_prometheus_is_told_where_the_binary_serves_its_metrics(self):
        for labels, rendered, described in self.cases():
            with self.subTest(**labels):
                environment, _ = pod_environment(rendered.server, rendered.objects)
                self.assertIn(f"{described['prefix']}_METRICS_PORT", {v["name"] for v in described["variables"]})
                annotations = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
                self.assertEqual(annotations["prometheus.io/scrape"], "true")
                self.assertEqual(annotations["prometheus.io/port"], environment[f"{described['prefix']}_METRICS_PORT"])
                self.assertEqual(annotations["prometheus.io/path"], "/metrics")

    def test_probes_ask_the_binarys_health_service_over_grpc(self):
        for labels, rendered, described in self.cases():
            with self.subTest(**labels):
                self.assertEqual(described["healthService"], "grpc.health.v1.Health")
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    grpc = rendered.server[probe]["grpc"]
                    self.assertEqual(grpc["port"], described["port"], probe)
                    self.assertEqual(grpc.get("service", ""), described["healthCheckName"], probe)

    def test_the_init_container_migrates_as_the_schemas_owner(self):
        for labels, rendered, described in self.cases():
            with self.subTest(**labels):
                self.assertEqual(rendered.migrate["command"], [rendered.program] + described["commands"]["migrate"])
                self.assertEqual(rendered.migrate["image"], rendered.server["image"])
                _, secrets = pod_environment(rendered.migrate, rendered.objects)
                self.assertIn(described["migrationDatabaseURLVariables"][0], secrets)
                environment, _ = pod_environment(rendered.server, rendered.objects)
                self.assertEqual(environment.get(f"{described['prefix']}_MIGRATE_ON_START"), "false",
                                 "the server would migrate again, as the app role")

    def test_termination_grace_matches_the_binarys_drain(self):
        for labels, rendered, _ in self.cases():
            with self.subTest(**labels):
                environment, _ = pod_environment(rendered.server, rendered.objects)
                described = describe(rendered.program, environment)
                self.assertEqual(rendered.pod["terminationGracePeriodSeconds"], math.ceil(described["shutdownLimitSeconds"]))
                self.assertGreater(described["shutdownDelaySeconds"], 0, "endpoints need time to drop the pod")

    def test_the_service_routes_its_port_to_the_pods(self):
        for labels, rendered, described in self.cases():
            with self.subTest(**labels):
                service = find(rendered.objects, "Service", rendered.program)
                self.assertEqual([(p["port"], p["targetPort"]) for p in service["spec"]["ports"]], [(described["port"], "grpc")])
                pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
                self.assertLessEqual(service["spec"]["selector"].items(), pod_labels.items())

    def test_the_pod_is_locked_down_and_rolls_one_at_a_time(self):
        for labels, rendered, _ in self.cases():
            with self.subTest(**labels):
                pod = rendered.pod
                self.assertIs(pod["enableServiceLinks"], False)
                self.assertIs(pod["automountServiceAccountToken"], False)
                self.assertEqual(pod["serviceAccountName"], rendered.program)
                self.assertIs(pod["securityContext"]["runAsNonRoot"], True)
                self.assertEqual(pod["securityContext"]["seccompProfile"], {"type": "RuntimeDefault"})
                for container in (rendered.server, rendered.migrate):
                    context = container["securityContext"]
                    self.assertIs(context["readOnlyRootFilesystem"], True)
                    self.assertIs(context["allowPrivilegeEscalation"], False)
                    self.assertEqual(context["capabilities"]["drop"], ["ALL"])
                    self.assertTrue({"cpu", "memory"} <= container["resources"]["requests"].keys())
                    self.assertTrue({"cpu", "memory"} <= container["resources"]["limits"].keys())
                self.assertEqual(rendered.deployment["spec"]["strategy"],
                                 {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
                self.assertNotIn("replicas", rendered.deployment["spec"], "the autoscaler owns the replica count")
                autoscaler = find(rendered.objects, "HorizontalPodAutoscaler", rendered.program)
                self.assertEqual(autoscaler["spec"]["scaleTargetRef"]["name"], rendered.program)
                budget = find(rendered.objects, "PodDisruptionBudget", rendered.program)
                pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
                self.assertLessEqual(budget["spec"]["selector"]["matchLabels"].items(), pod_labels.items())


class NetworkPoliciesFollowTheCalls(unittest.TestCase):
    """Who may call whom comes from the binaries: a `<PREFIX>_<X>_TARGET` variable is a call."""

    @classmethod
    def setUpClass(cls):
        cls.rows = {row["service"]: row for row in servers()}
        cls.by_program = {row["program"]: row["service"] for row in servers()}
        cls.ports = {service: describe(row["program"])["port"] for service, row in cls.rows.items()}

    def calls(self, environment):
        """(caller, callee) for each upstream target a service's manifests set."""
        calls = set()
        for service, row in self.rows.items():
            rendered = Rendered(row, environment)
            variables, _ = pod_environment(rendered.server, rendered.objects)
            known = {v["name"] for v in describe(row["program"])["variables"]}
            for name, value in variables.items():
                if not name.endswith("_TARGET"):
                    continue
                self.assertIn(name, known)
                host, port = re.fullmatch(r"(?:dns:///)?([a-z0-9-]+):(\d+)", value).groups()
                self.assertIn(host, self.by_program, f"{name} names no service of the suite")
                callee = self.by_program[host]
                self.assertEqual(int(port), self.ports[callee], f"{name} dials the wrong port")
                calls.add((service, callee))
        return calls

    def test_each_internal_service_admits_its_callers_and_only_them(self):
        for environment in ENVIRONMENTS:
            calls = self.calls(environment) | PLANNED_CALLS
            for service, row in self.rows.items():
                with self.subTest(environment=environment, service=service):
                    policy = find(render(f"k8s/{service}/overlays/{environment}"), "NetworkPolicy", row["program"])
                    self.assertIn("Ingress", policy["spec"]["policyTypes"])
                    rule, scrape = policy["spec"]["ingress"]
                    # The second rule lets only the monitoring namespace reach only the metrics port.
                    self.assertEqual([p["port"] for p in scrape["ports"]], [9090])
                    self.assertEqual([peer["namespaceSelector"]["matchLabels"] for peer in scrape["from"]],
                                     [{"kubernetes.io/metadata.name": "monitoring"}])
                    self.assertEqual([p["port"] for p in rule["ports"]], [self.ports[service]])
                    if service == "gateway":
                        self.assertNotIn("from", rule, "the gateway is the public door")
                        continue
                    admitted = {self.by_program[peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]]
                                for peer in rule["from"]}
                    self.assertEqual(admitted, {caller for caller, callee in calls if callee == service})

    def test_each_caller_may_reach_what_it_calls(self):
        for environment in ENVIRONMENTS:
            for caller, callee in self.calls(environment) | PLANNED_CALLS:
                with self.subTest(environment=environment, caller=caller, callee=callee):
                    policy = find(render(f"k8s/{caller}/overlays/{environment}"), "NetworkPolicy",
                                  self.rows[caller]["program"])
                    reachable = {(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"], port["port"])
                                 for rule in policy["spec"]["egress"] for peer in rule.get("to", [])
                                 for port in rule["ports"]}
                    self.assertIn((self.rows[callee]["program"], self.ports[callee]), reachable)


class ImagesAgreeWithTheBinaries(unittest.TestCase):
    def dockerfile(self, service):
        with open(os.path.join(ROOT, "services", service, "Dockerfile")) as file:
            return file.read()

    def test_each_image_builds_and_runs_its_program_on_its_port_with_a_health_check(self):
        for row in servers():
            with self.subTest(row["service"]):
                text, program = self.dockerfile(row["service"]), row["program"]
                described = describe(program)
                self.assertIn(f"--static-swift-stdlib --product {program}", text)
                self.assertRegex(text, rf"(?m)^EXPOSE {described['defaultPort']}$")
                self.assertRegex(text, rf'(?m)^HEALTHCHECK .*CMD \["{program}", "health"\]$')
                self.assertRegex(text, rf'(?m)^ENTRYPOINT \["{program}"\]$')

    def test_every_image_is_two_stages_of_one_debian_release_and_runs_as_the_pods_user(self):
        pod_user = Rendered(servers()[0], "production").pod["securityContext"]["runAsUser"]
        for service in sorted(os.listdir(os.path.join(ROOT, "services"))):
            if not os.path.isfile(os.path.join(ROOT, "services", service, "Dockerfile")):
                continue
            with self.subTest(service):
                text = self.dockerfile(service)
                stages = re.findall(r"(?m)^FROM (\S+)", text)
                self.assertEqual(len(stages), 2)
                self.assertRegex(stages[0], r"^swift:6\.\d+-bookworm$")
                self.assertEqual(stages[1], "debian:bookworm-slim")
                self.assertRegex(text, rf"(?m)^USER {pod_user}:{pod_user}$")
                self.assertRegex(text, r'org\.opencontainers\.image\.version="\$\{VERSION\}"')
                self.assertRegex(text, r'org\.opencontainers\.image\.revision="\$\{REVISION\}"')


if __name__ == "__main__":
    unittest.main()
