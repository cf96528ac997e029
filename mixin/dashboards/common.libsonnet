// Variables and label matchers shared by the three dashboards.
local g = import '../lib/grafana.libsonnet';
local u = import '../lib/utils.libsonnet';

function(cfg) {
  local c = self,
  cl: '%s=~"$cluster"' % cfg.clusterLabel,
  // $namespace is Cortex's namespace: `namespace` on Cortex's and kube-state-metrics' series, and
  // cortexNamespaceLabel on ringwatch's (see config.libsonnet).
  ns: '%s=~"$namespace"' % cfg.namespaceLabel,
  rwNs: '%s=~"$namespace"' % cfg.cortexNamespaceLabel,
  // Matchers for ringwatch series (raw ones also need the job selector) and for the recording rules.
  table: u.sel([c.cl, c.rwNs, 'table=~"$table"']),
  ring: u.sel([c.table, 'ring=~"$ring"']),
  rawTable: u.sel([cfg.ringwatchSelector, c.table]),
  rawRing: u.sel([cfg.ringwatchSelector, c.ring]),
  variables: [
    g.variable('cluster', 'ringwatch_up{%s}' % cfg.ringwatchSelector, cfg.clusterLabel),
    g.variable('namespace', 'ringwatch_up{%s}' % u.sel([cfg.ringwatchSelector, c.cl]), cfg.cortexNamespaceLabel),
    g.variable('table', 'ringwatch_up{%s}' % u.sel([cfg.ringwatchSelector, c.cl, c.rwNs])),
    g.variable('ring', 'ringwatch_ring_members{%s}' % c.rawTable),
  ],
}
