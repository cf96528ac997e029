{
  grafanaDashboards+:: {
    'ringwatch-ring-health.json': (import 'ring-health.libsonnet')($._config),
    'ringwatch-rollout-progress.json': (import 'rollout-progress.libsonnet')($._config),
    'ringwatch-exporter.json': (import 'exporter.libsonnet')($._config),
  },
}
