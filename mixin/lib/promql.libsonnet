// PromQL pieces derived from _config, shared by rules, alerts and dashboards. The rules and alerts
// write their PromQL out in `|||` blocks formatted with `p.fmt` (label lists, selectors, windows).
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

  // What the `|||` blocks are formatted with: %(rw)s, %(replica)s, %(member)s, ...
  fmt:: {
    rw: p.rw,
    replica: p.replicaLabels,
    member: p.memberOn,
    table: p.tableOn,
    ring: p.ringOn,
    // one replica's view of one table, and of one member
    replicaTable: u.labels(p.groupLabels + cfg.ringwatchReplicaLabels + ['job', 'table']),
    replicaMember: u.labels(p.groupLabels + cfg.ringwatchReplicaLabels + ['job', 'table', 'ring', 'member']),
    gap: cfg.gapTolerance,
    moving: cfg.versionMovingWindow,
  },

  // One member series per member: each replica's series kept only while that replica's scans of the
  // table succeed (a blind replica's leftover snapshot never speaks for the table), both sides bridged
  // over gapTolerance (one failed scan or scrape resets no `for:` clock), then the replicas folded.
  // `matchers` narrows the series (a ring, for per-ring rules).
  // No trailing newline: set it into a `|||` block with u.indent.
  member(agg, metric, matchers=''):: u.indent(|||
    %(agg)s without (%(replica)s) (
      last_over_time(%(metric)s{%(sel)s}[%(gap)s])
      and on (%(replicaTable)s) (max_over_time(ringwatch_up{%(rw)s}[%(gap)s]) == 1)
    )
  ||| % (p.fmt { agg: agg, metric: metric, sel: u.sel([p.rw, matchers]) }), 0),

  // 1 per member whose item's version moved within versionMovingWindow on any replica (judged on
  // Prometheus' own history, so a ringwatch restart does not reset it).
  versionMoving:: u.indent(|||
    (
      max without (%(replica)s) (
        max_over_time(ringwatch_member_cas_writes_total{%(rw)s}[%(moving)s])
        - min_over_time(ringwatch_member_cas_writes_total{%(rw)s}[%(moving)s])
      ) > 0
    )
  ||| % p.fmt, 0),

  // Rule variants for per-ring overrides, for a rule that uses these ringDefaults knobs: the rings
  // whose overrides touch them get a variant each, the default variant excludes them. Rings whose
  // overrides touch other knobs only share the default variant.
  variants(knobs)::
    local overrides = { [r]: cfg.ringOverrides[r] for r in std.objectFields(cfg.ringOverrides) if cfg.ringOverrides[r] != null };
    local unknown = [
      '%s.%s' % [r, k]
      for r in std.objectFields(overrides)
      for k in std.objectFields(overrides[r])
      if !std.objectHas(cfg.ringDefaults, k)
    ];
    assert unknown == [] : 'ringOverrides: not a per-ring knob: %s' % std.join(', ', unknown);
    local own = [r for r in std.objectFields(overrides) if std.length(std.setInter(std.set(std.objectFields(overrides[r])), std.set(knobs))) > 0];
    [{
      matcher: if own == [] then '' else 'ring!~"%s"' % std.join('|', [u.regexEscape(r) for r in own]),
      t: cfg.ringDefaults,
      labels: {},
    }] + [
      {
        matcher: 'ring="%s"' % r,
        t: cfg.ringDefaults + overrides[r],
        // Same value as the series' own label; keeps the rules apart for promtool's duplicate lint.
        labels: { ring: r },
      }
      for r in own
    ],

  // StatefulSet regex per ring, without rings set to null.
  rolloutStatefulSets:: { [r]: cfg.rolloutStatefulSets[r] for r in std.objectFields(cfg.rolloutStatefulSets) if cfg.rolloutStatefulSets[r] != null },
}
