"""The metrics adapter's rule (k8s/monitoring/prometheus-adapter.yaml) serves the metric the
autoscaling component (k8s/components/inflight-calls-metric) makes each HPA read, from a metric
the servers export, with queries Prometheus accepts."""
import os
import unittest

import yaml

from support import ROOT, check_rules, documented_metrics

ADAPTER = os.path.join(ROOT, "k8s", "monitoring", "prometheus-adapter.yaml")
COMPONENT = os.path.join(ROOT, "k8s", "components", "inflight-calls-metric", "kustomization.yaml")
# What the adapter puts in the templates for one HPA's pods.
TEMPLATES = {"<<.Series>>": "maas_grpc_server_inflight_calls",
             "<<.LabelMatchers>>": 'namespace="maas", pod=~"maas-quota-0|maas-quota-1"', "<<.GroupBy>>": "pod"}


def the_rule():
    with open(ADAPTER) as file:
        values = yaml.safe_load(file)
    (rule,) = values["rules"]["custom"]
    return values, rule


def hpa_metric():
    with open(COMPONENT) as file:
        (patch,) = yaml.safe_load(file)["patches"]
    (operation,) = yaml.safe_load(patch["patch"])
    return operation["value"]["pods"]["metric"]["name"]


class AdapterRule(unittest.TestCase):
    def test_it_serves_the_metric_the_autoscalers_read_from_one_the_servers_export(self):
        values, rule = the_rule()
        self.assertFalse(values["rules"]["default"])
        self.assertEqual(rule["name"]["as"], hpa_metric())
        series = rule["seriesQuery"].split("{")[0]
        self.assertIn(series, documented_metrics())
        self.assertRegex(series, rule["name"]["matches"])
        self.assertEqual(rule["resources"]["overrides"], {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}})

    def test_its_queries_are_valid_promql(self):
        _, rule = the_rule()
        query = rule["metricsQuery"]
        for template, value in TEMPLATES.items():
            self.assertIn(template, query)
            query = query.replace(template, value)
        check_rules(self, [{"name": "adapter", "rules": [
            {"record": "maas:adapter:series", "expr": rule["seriesQuery"]},
            {"record": "maas:adapter:metric", "expr": query}]}])


if __name__ == "__main__":
    unittest.main()
