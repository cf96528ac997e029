// Variables and label matchers shared by the three dashboards.
local g = import '../lib/grafana.libsonnet';
local u = import '../lib/utils.libsonnet';

function(cfg) {
  local c = self,
  cl: '%s=~"$cluster"' % cfg.clusterLabel,
  ns: '%s=~"$namespace"' % cfg.namespaceLabel,
  // Matchers for ringwatch series (raw ones also need the job selector) and for the recording rules.
  table: u.sel([c.cl, c.ns, 'table=~"$table"']),
  ring: u.sel([c.table, 'ring=~"$ring"']),
  rawTable: u.sel([cfg.ringwatchSelector, c.table]),
  rawRing: u.sel([cfg.ringwatchSelector, c.ring]),
  variables: [
    g.variable('cluster', 'ringwatch_up{%s}' % cfg.ringwatchSelector, cfg.clusterLabel),
    g.variable('namespace', 'ringwatch_up{%s}' % u.sel([cfg.ringwatchSelector, c.cl]), cfg.namespaceLabel),
    g.variable('table', 'ringwatch_up{%s}' % u.sel([cfg.ringwatchSelector, c.cl, c.ns])),
    g.variable('ring', 'ringwatch_ring_members{%s}' % c.rawTable),
  ],
}
