// Alerts on ring members, from the gated and replica-folded series: while ringwatch does not see a table
// (ringwatch_up 0 on every replica, or the snapshot expired) for longer than gapTolerance, none of these
// can fire for it (RingwatchScanFailing and RingwatchDown say so instead).
local u = import '../lib/utils.libsonnet';

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local f = p.fmt,
    local memberText = u.memberText,

    groups+: [
      {
        name: 'ringwatch-ring',
        rules: [
          {
            alert: 'CortexRingMemberCASStalled',
            // Computed here like the stale alert's age, so that both resolve at the same evaluation, and
            // evaluated first: the stale alert inhibits this one, whose resolution must reach Alertmanager
            // before the stale one's (else it is notified for a moment in between).
            expr: |||
              (time() - %(firstSeen)s)
              * on (%(member)s) group_left (member_zone)
              member:ringwatch_member_info:max
              > %(after)s
            ||| % (f {
                     firstSeen: p.member('min', 'ringwatch_member_cas_last_change_timestamp_seconds', v.matcher),
                     after: u.num(u.seconds(v.t.casStalledAfter)),
                   }),
            'for': v.t.casStalledFor,
            labels: { severity: v.t.casStalledSeverity } + v.labels,
            annotations: {
              summary: "A Cortex ring member's item has stopped changing while it stays in the ring.",
              description: memberText + ' has had no successful CAS write (its version has not moved) for {{ $value | humanizeDuration }} (threshold %s): its heartbeat loop is stuck or the process is gone.' % v.t.casStalledAfter,
            },
          }
          for v in p.variants(['casStalledAfter', 'casStalledFor', 'casStalledSeverity'])
        ] + [
          {
            alert: 'CortexRingMemberHeartbeatStale',
            // The heartbeat age against the threshold ringwatch judges the member by, both as published.
            // Computed here, not read from the recording rules: a rule of another group is read as of its
            // last evaluation, up to one interval late.
            expr: |||
              (
                %(age)s
                >
                %(threshold)s
              )
              * on (%(member)s) group_left (member_zone)
              member:ringwatch_member_info:max
            ||| % (f {
                     age: u.indent(p.member('max', 'ringwatch_member_heartbeat_age_seconds', v.matcher), 2),
                     threshold: u.indent(p.member('max', 'ringwatch_member_heartbeat_stale_threshold_seconds', v.matcher), 2),
                   }),
            'for': v.t.heartbeatStaleFor,
            labels: { severity: v.t.heartbeatStaleSeverity } + v.labels,
            annotations: {
              summary: 'A Cortex ring member has stopped heartbeating.',
              description: memberText + ' last heartbeated {{ $value | humanizeDuration }} before ringwatch read it, more than the stale threshold ringwatch judges it by (its /ring page shows it, from its heartbeat period). Cortex treats it as unhealthy after its heartbeat timeout.',
            },
          }
          for v in p.variants(['heartbeatStaleFor', 'heartbeatStaleSeverity'])
        ] + [
          {
            alert: 'CortexRingMemberGhost',
            // A member whose version still moves is alive (a skewed clock), not a ghost.
            expr: |||
              member:ringwatch_member_heartbeat_age_seconds:max%(sel)s > %(after)s
              and on (%(member)s)
              member:ringwatch_member_state:max{state="ACTIVE"}
              unless on (%(member)s)
              %(moving)s
            ||| % (f { sel: u.selector(v.matcher), after: u.num(u.seconds(v.t.ghostAfter)), moving: p.versionMoving }),
            'for': v.t.ghostFor,
            labels: { severity: v.t.ghostSeverity } + v.labels,
            annotations: {
              summary: 'A Cortex ring member is ACTIVE but dead: it must be forgotten.',
              description: memberText + ' is ACTIVE but its last heartbeat is {{ $value | humanizeDuration }} old (threshold %s) and its version has not moved: it died without leaving the ring and still owns tokens. Forget it once its process is confirmed gone.' % v.t.ghostAfter,
            },
          }
          for v in p.variants(['ghostAfter', 'ghostFor', 'ghostSeverity'])
        ] + [
          {
            alert: 'CortexRingMemberClockSkewed',
            expr: |||
              abs(member:ringwatch_member_heartbeat_age_seconds:max%(sel)s)
              > member:ringwatch_member_heartbeat_stale_threshold_seconds:max
              and on (%(member)s)
              %(moving)s
            ||| % (f { sel: u.selector(v.matcher), moving: p.versionMoving }),
            'for': v.t.clockSkewFor,
            labels: { severity: v.t.clockSkewSeverity } + v.labels,
            annotations: {
              summary: "A Cortex ring member's heartbeat timestamps are off while it keeps writing: its clock is skewed.",
              description: memberText + " writes its item (the version moves) but its heartbeat timestamp is {{ $value | humanizeDuration }} away from ringwatch's clock, beyond its stale threshold. Cortex's ring readers judge heartbeats on their own clocks: fix the clock (NTP) of the member's node or of ringwatch's.",
            },
          }
          for v in p.variants(['clockSkewFor', 'clockSkewSeverity'])
        ] + [
          {
            alert: 'CortexRingUnhealthyMembers',
            expr: |||
              ring:ringwatch_unhealthy_failure_domains:count%(sel)s
              > on (%(ring)s)
              ring:ringwatch_failure_domains_tolerated:count
            ||| % (f { sel: u.selector(v.matcher) }),
            'for': v.t.unhealthyFor,
            labels: { severity: v.t.unhealthySeverity } + v.labels,
            annotations: {
              summary: 'Too many stale members in a Cortex ring for its replication to hold.',
              description: 'Ring {{ $labels.ring }} in table {{ $labels.table }} has stale members in {{ $value }} failure domains (zones, or members if the ring has no zones), more than its quorum tolerates (replication factor %s, capped by the number of failure domains). Writes and reads of some series fail their quorum.' % u.num(v.t.replicationFactor),
            },
          }
          for v in p.variants(['unhealthyFor', 'unhealthySeverity', 'replicationFactor'])
        ],
      },
    ],
  },
}
