"""The suite's Grafana dashboard (k8s/monitoring/dashboard.json): every query is valid PromQL
(promtool), reads only metrics the servers export, and every exported metric has a panel; it
ships as the ConfigMap Grafana's sidecar loads."""
import json
import os
import re
import unittest

from support import ROOT, check_rules, documented_metrics, metrics_in, render

DASHBOARD = os.path.join(ROOT, "k8s", "monitoring", "dashboard.json")
# What Grafana puts in place of its variables before a query reaches Prometheus.
VARIABLES = {"$__rate_interval": "1m", "$namespace": ".*", "$job": ".*"}


def dashboard():
    with open(DASHBOARD) as file:
        return json.load(file)


def queries():
    """(panel title, expression) of every query, Grafana's variables left in."""
    return [(panel["title"], target["expr"]) for panel in dashboard()["panels"] for target in panel.get("targets", [])]


class DashboardQueries(unittest.TestCase):
    def test_every_query_is_valid_promql(self):
        rules = []
        for number, (title, expression) in enumerate(queries()):
            for variable, value in VARIABLES.items():
                expression = expression.replace(variable, value)
            self.assertNotIn("$", expression, f"{title}: a Grafana variable this test does not know")
            rules.append({"record": f"maas:dashboard:query{number}", "expr": expression})
        check_rules(self, [{"name": "dashboard", "rules": rules}])

    def test_queries_read_only_exported_metrics_and_every_exported_metric_has_a_panel(self):
        documented = documented_metrics()
        # The runtime's, the pool's and each service's tables: a README losing its table fails here.
        self.assertGreaterEqual(len(documented), 20, sorted(documented))
        used = set()
        for title, expression in queries():
            for metric in metrics_in(expression):
                with self.subTest(panel=title, metric=metric):
                    self.assertIn(metric, documented, f"{metric} is in no README's metrics table")
                used.add(metric)
        self.assertEqual(documented - used, set(), "metrics the servers export that no panel shows")

    def test_every_query_follows_the_namespace_and_job_chosen(self):
        for title, expression in queries():
            # Each metric with its selector (a matcher's label names are inside the braces;
            # `by (...)` lists are dropped first).
            for selector in re.findall(r"\b(?:grpc|maas|process)_[a-z_]+(\{[^}]*\})?", re.sub(r"by \([^)]*\)", "", expression)):
                with self.subTest(panel=title, selector=selector):
                    self.assertIn('namespace=~"$namespace"', selector)
                    self.assertIn('job=~"$job"', selector)

    def test_panels_do_not_overlap_and_ids_are_unique(self):
        panels = dashboard()["panels"]
        ids = [panel["id"] for panel in panels]
        self.assertEqual(len(ids), len(set(ids)))
        cells = {}
        for panel in panels:
            box = panel["gridPos"]
            self.assertLessEqual(box["x"] + box["w"], 24, panel["title"])
            for x in range(box["x"], box["x"] + box["w"]):
                for y in range(box["y"], box["y"] + box["h"]):
                    self.assertNotIn((x, y), cells, f"{panel['title']} overlaps {cells.get((x, y))}")
                    cells[(x, y)] = panel["title"]


class DashboardShipping(unittest.TestCase):
    def test_the_kustomization_ships_it_as_a_configmap_grafana_loads(self):
        (config_map,) = [item for item in render("k8s/monitoring") if item["kind"] == "ConfigMap"]
        self.assertEqual(config_map["metadata"]["name"], "maas-dashboard")
        self.assertEqual(config_map["metadata"]["labels"].get("grafana_dashboard"), "1")
        self.assertEqual(json.loads(config_map["data"]["maas.json"]), dashboard())


if __name__ == "__main__":
    unittest.main()
