// PromQL building blocks derived from _config, shared by rules, alerts and dashboards.
local u = import 'utils.libsonnet';

function(cfg) {
  local p = self,
  rw: cfg.ringwatchSelector,
  groupLabels: std.set([cfg.clusterLabel, cfg.namespaceLabel]),
  replicaLabels: u.labels(cfg.ringwatchReplicaLabels),
  // The labels that identify one member once replicas are aggregated away.
  memberOn: u.labels(p.groupLabels + ['job', 'table', 'ring', 'member']),
  tableOn: u.labels(p.groupLabels + ['job', 'table']),
  ringOn: u.labels(p.groupLabels + ['job', 'table', 'ring']),

  // Keep each replica's series only while that replica's last scan of the table succeeded: a blind
  // replica's leftover snapshot never speaks for the table.
  gate(expr)::
    '(%s and on (%s) (ringwatch_up{%s} == 1))' % [
      expr,
      u.labels(p.groupLabels + cfg.ringwatchReplicaLabels + ['job', 'table']),
      p.rw,
    ],
  // Gate, then fold the replicas into one series.
  dedup(agg, expr):: '%s without (%s) (%s)' % [agg, p.replicaLabels, p.gate(expr)],
  // Adds the member's zone as `member_zone`.
  withZone(expr)::
    '%s\n* on (%s) group_left (member_zone)\nringwatch:member_zone:info' % [expr, p.memberOn],

  // StatefulSet regex per ring, without rings set to null.
  rolloutStatefulSets:: { [r]: cfg.rolloutStatefulSets[r] for r in std.objectFields(cfg.rolloutStatefulSets) if cfg.rolloutStatefulSets[r] != null },

  // Rule variants for per-ring overrides: the default one excludes every overridden ring.
  ringVariants::
    // A ring set to null (e.g. from build.py overrides) has no override.
    local overridden = [r for r in std.objectFields(cfg.ringOverrides) if cfg.ringOverrides[r] != null];
    [{
      ring: null,
      matcher: if overridden == [] then '' else 'ring!~"%s"' % std.join('|', [u.regexEscape(r) for r in overridden]),
      t: cfg.ringDefaults,
      labels: {},
    }] + [
      {
        ring: r,
        matcher: 'ring="%s"' % r,
        t: cfg.ringDefaults + cfg.ringOverrides[r],
        // Same value as the series' own label; keeps the rules apart for promtool's duplicate lint.
        labels: { ring: r },
      }
      for r in overridden
    ],
}
