"""The suite's alerts (k8s/monitoring/prometheusrule.yaml): valid rules, firing when they should
and not otherwise (promtool's unit tests in k8s/monitoring/alerts_test.yaml), and only on metrics
the servers export."""
import os
import shutil
import tempfile
import unittest

import yaml

from support import ROOT, check_rules, documented_metrics, metrics_in, render, run

RULE = os.path.join(ROOT, "k8s", "monitoring", "prometheusrule.yaml")
TESTS = os.path.join(ROOT, "k8s", "monitoring", "alerts_test.yaml")


def groups():
    with open(RULE) as file:
        return yaml.safe_load(file)["spec"]["groups"]


class AlertsAreTested(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)

    def test_the_rules_and_their_templates_are_valid(self):
        check_rules(self, groups())

    def test_each_alert_fires_when_it_should_and_not_otherwise(self):
        # The unit tests match labels only: annotations are templates of the values, checked above.
        rules = groups()
        for group in rules:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        with open(os.path.join(self.directory, "rules.yaml"), "w") as file:
            yaml.safe_dump({"groups": rules}, file)
        shutil.copy(TESTS, self.directory)
        output = run("promtool", "test", "rules", os.path.join(self.directory, os.path.basename(TESTS)))
        self.assertIn("SUCCESS", output)

    def test_every_alert_has_a_unit_test(self):
        alerts = {rule["alert"] for group in groups() for rule in group["rules"]}
        with open(TESTS) as file:
            tested = {case["alertname"] for test in yaml.safe_load(file)["tests"] for case in test["alert_rule_test"]}
        self.assertEqual(alerts, tested)

    def test_alerts_read_only_metrics_the_servers_export(self):
        documented = documented_metrics()
        for group in groups():
            for rule in group["rules"]:
                for metric in metrics_in(rule["expr"]):
                    with self.subTest(alert=rule["alert"], metric=metric):
                        self.assertIn(metric, documented, f"{metric} is in no README's metrics table")

    def test_the_kustomization_renders_the_rule(self):
        (rule,) = [item for item in render("k8s/monitoring") if item["kind"] != "ConfigMap"]
        self.assertEqual((rule["apiVersion"], rule["kind"]), ("monitoring.coreos.com/v1", "PrometheusRule"))


if __name__ == "__main__":
    unittest.main()
