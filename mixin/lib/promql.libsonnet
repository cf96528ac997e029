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

  // Keep each replica's series only while that replica's scans of the table succeed: a blind replica's
  // leftover snapshot never speaks for the table. Both sides are bridged over gapTolerance (the last
  // value of a series that missed a scrape; a replica whose last scan failed), so that one failed scan
  // or scrape resets no `for:` clock.
  gate(expr)::
    '(last_over_time(%s[%s]) and on (%s) (max_over_time(ringwatch_up{%s}[%s]) == 1))' % [
      expr,
      cfg.gapTolerance,
      u.labels(p.groupLabels + cfg.ringwatchReplicaLabels + ['job', 'table']),
      p.rw,
      cfg.gapTolerance,
    ],
  // Gate, then fold the replicas into one series.
  dedup(agg, expr):: '%s without (%s) (%s)' % [agg, p.replicaLabels, p.gate(expr)],
  // Gate a state series, keep the members whose value is 1, fold the replicas. A bridged state (the
  // last value of a series gone missing) counts only for a member with no current state series: with
  // --metrics.member-states=current a member leaving PENDING must not stay PENDING for gapTolerance.
  dedupOnes(agg, expr)::
    local live = '(%s == 1)' % expr;
    local replica = u.labels(p.groupLabels + cfg.ringwatchReplicaLabels + ['job', 'table']);
    local member = u.labels(p.groupLabels + cfg.ringwatchReplicaLabels + ['job', 'table', 'ring', 'member']);
    '%s without (%s) (\n  (%s == 1) unless on (%s) %s\n  or\n  (%s and on (%s) (max_over_time(ringwatch_up{%s}[%s]) == 1))\n)' % [
      agg,
      p.replicaLabels,
      p.gate(expr),
      member,
      live,
      live,
      replica,
      p.rw,
      cfg.gapTolerance,
    ],

  // Heartbeat age at ringwatch's last scan per member, with zone (the exporter's own judgement input).
  heartbeatAge:: p.withZone(p.dedup('max', 'ringwatch_member_heartbeat_age_seconds{%s}' % p.rw)),
  // The age past which ringwatch calls each member stale, as the exporter publishes it, with zone:
  // ringwatch judges staleness once, and the rules compare the age with its judgement.
  heartbeatStaleThreshold:: p.withZone(p.dedup('max', 'ringwatch_member_heartbeat_stale_threshold_seconds{%s}' % p.rw)),
  // 1 per member whose version moved within versionMovingWindow (any replica; Prometheus' own history).
  versionMoving::
    '(max without (%(R)s) (max_over_time(ringwatch_member_cas_writes_total{%(rw)s}[%(w)s]) - min_over_time(ringwatch_member_cas_writes_total{%(rw)s}[%(w)s])) > 0)' % {
      R: p.replicaLabels,
      rw: p.rw,
      w: cfg.versionMovingWindow,
    },

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
