// Alerts on ring members, from the gated and replica-folded series: while ringwatch does not see a table
// (ringwatch_up 0 on every replica, or the snapshot expired) for longer than gapTolerance, none of these
// can fire for it.
local u = import '../lib/utils.libsonnet';

local memberText = 'Member {{ $labels.member }}{{ with $labels.member_zone }} (zone {{ . }}){{ end }} of ring {{ $labels.ring }} in table {{ $labels.table }}';

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local sel(v, extra='') =
      local m = u.sel([extra, v.matcher]);
      if m == '' then '' else '{%s}' % m,
    groups+: [
      {
        name: 'ringwatch-ring',
        rules: std.flattenArrays([
          [
            {
              alert: 'CortexRingMemberCASStalled',
              // Computed here like the stale age, so that both resolve at the same evaluation, and
              // evaluated first: the stale alert inhibits this one, whose resolution must reach
              // Alertmanager before the stale one's (else it is notified for a moment in between).
              expr: |||
                %s
                > %s
              ||| % [
                p.withZone('(time() - %s)' % p.dedup('min', 'ringwatch_member_cas_last_change_timestamp_seconds{%s}' % u.sel([p.rw, v.matcher]))),
                u.num(u.seconds(v.t.casStalledAfter)),
              ],
              'for': v.t.casStalledFor,
              labels: { severity: v.t.casStalledSeverity } + v.labels,
              annotations: {
                summary: "A Cortex ring member's item has stopped changing while it stays in the ring.",
                description: memberText + ' has had no successful CAS write (its version has not moved) for {{ $value | humanizeDuration }} (threshold %s): its heartbeat loop is stuck or the process is gone.' % v.t.casStalledAfter,
              },
            },
            {
              alert: 'CortexRingMemberHeartbeatStale',
              // Age and threshold are computed here, not read from the recording rules: a rule of another
              // group is read as of its last evaluation, up to one interval late.
              expr: p.withZone(|||
                (
                  %s
                  >
                  %s
                )
              ||| % [
                p.dedup('max', 'ringwatch_member_heartbeat_age_seconds{%s}' % u.sel([p.rw, v.matcher])),
                p.dedup('max', 'ringwatch_member_heartbeat_stale_threshold_seconds{%s}' % u.sel([p.rw, v.matcher])),
              ]),
              'for': v.t.heartbeatStaleFor,
              labels: { severity: v.t.heartbeatStaleSeverity } + v.labels,
              annotations: {
                summary: 'A Cortex ring member has stopped heartbeating.',
                description: memberText + ' last heartbeated {{ $value | humanizeDuration }} before ringwatch read it, more than the stale threshold ringwatch judges it by (its /ring page shows it, from its heartbeat period). Cortex treats it as unhealthy after its heartbeat timeout.',
              },
            },
            {
              alert: 'CortexRingMemberGhost',
              // A member whose version still moves is alive (a skewed clock), not a ghost.
              expr: |||
                ringwatch:member_heartbeat_age_seconds:max%s > %s
                and on (%s)
                ringwatch:member_state:current{state="ACTIVE"}
                unless on (%s)
                %s
              ||| % [sel(v), u.num(u.seconds(v.t.ghostAfter)), p.memberOn, p.memberOn, p.versionMoving],
              'for': v.t.ghostFor,
              labels: { severity: v.t.ghostSeverity } + v.labels,
              annotations: {
                summary: 'A Cortex ring member is ACTIVE but dead: it must be forgotten.',
                description: memberText + ' is ACTIVE but its last heartbeat is {{ $value | humanizeDuration }} old (threshold %s) and its version has not moved: it died without leaving the ring and still owns tokens. Forget it once its process is confirmed gone.' % v.t.ghostAfter,
              },
            },
            {
              alert: 'CortexRingMemberClockSkewed',
              expr: |||
                abs(ringwatch:member_heartbeat_age_seconds:max%s)
                > ringwatch:member_heartbeat_stale_threshold_seconds%s
                and on (%s)
                %s
              ||| % [sel(v), sel(v), p.memberOn, p.versionMoving],
              'for': v.t.clockSkewFor,
              labels: { severity: v.t.clockSkewSeverity } + v.labels,
              annotations: {
                summary: "A Cortex ring member's heartbeat timestamps are off while it keeps writing: its clock is skewed.",
                description: memberText + " writes its item (the version moves) but its heartbeat timestamp is {{ $value | humanizeDuration }} away from ringwatch's clock, beyond its stale threshold. Cortex's ring readers judge heartbeats on their own clocks: fix the clock (NTP) of the member's node or of ringwatch's.",
              },
            },
            {
              alert: 'CortexRingUnhealthyMembers',
              expr: |||
                ringwatch:ring_unhealthy_domains:count%s
                > on (%s)
                ringwatch:ring_tolerated_failure_domains:count%s
              ||| % [sel(v), p.ringOn, sel(v)],
              'for': v.t.unhealthyFor,
              labels: { severity: v.t.unhealthySeverity } + v.labels,
              annotations: {
                summary: 'Too many stale members in a Cortex ring for its replication to hold.',
                description: 'Ring {{ $labels.ring }} in table {{ $labels.table }} has stale members in {{ $value }} failure domains (zones, or members if the ring has no zones), more than its quorum tolerates (replication factor %s, capped by the number of failure domains). Writes and reads of some series fail their quorum.' % u.num(v.t.replicationFactor),
              },
            },
          ]
          for v in p.ringVariants
        ]),
      },
    ],
  },
}
