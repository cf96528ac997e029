// The ringwatch monitoring mixin: alerts, recording rules and dashboards for a Cortex ring in DynamoDB.
local mixin =
  (import 'config.libsonnet') +
  (import 'alerts/alerts.libsonnet') +
  (import 'rules/rules.libsonnet') +
  (import 'dashboards/dashboards.libsonnet');

// Every alert gets its runbook_url here, from _config.runbookURLBase and the alert's name.
mixin {
  prometheusAlerts+:: {
    groups: [
      group {
        rules: [
          rule {
            annotations+: {
              runbook_url: '%s#%s' % [$._config.runbookURLBase, std.asciiLower(rule.alert)],
            },
          }
          for rule in group.rules
        ],
      }
      for group in super.groups
    ],
  },
}
