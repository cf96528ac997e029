// Alerts on ring members, from the gated and replica-folded recording rules: while ringwatch does not
// see a table (ringwatch_up 0 on every replica, or the snapshot expired) none of these can fire for it.
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
              alert: 'CortexRingMemberHeartbeatStale',
              expr: 'ringwatch:member_heartbeat_age_seconds:max%s > %s' % [sel(v), u.num(u.seconds(v.t.heartbeatStaleAfter))],
              'for': v.t.heartbeatStaleFor,
              labels: { severity: v.t.heartbeatStaleSeverity } + v.labels,
              annotations: {
                summary: 'A Cortex ring member has stopped heartbeating.',
                description: memberText + ' last heartbeated {{ $value | humanizeDuration }} before ringwatch read it (threshold %s). Cortex treats it as unhealthy after its heartbeat timeout.' % v.t.heartbeatStaleAfter,
              },
            },
            {
              alert: 'CortexRingMemberCASStalled',
              expr: 'ringwatch:member_cas_age_seconds:min%s > %s' % [sel(v), u.num(u.seconds(v.t.casStalledAfter))],
              'for': v.t.casStalledFor,
              labels: { severity: v.t.casStalledSeverity } + v.labels,
              annotations: {
                summary: "A Cortex ring member's item has stopped changing while it stays in the ring.",
                description: memberText + ' has had no successful CAS write (its version has not moved) for {{ $value | humanizeDuration }} (threshold %s): its heartbeat loop is stuck or the process is gone.' % v.t.casStalledAfter,
              },
            },
            {
              alert: 'CortexRingMemberGhost',
              expr: |||
                ringwatch:member_heartbeat_age_seconds:max%s > %s
                and on (%s)
                ringwatch:member_state:current{state="ACTIVE"}
              ||| % [sel(v), u.num(u.seconds(v.t.ghostAfter)), p.memberOn],
              'for': v.t.ghostFor,
              labels: { severity: v.t.ghostSeverity } + v.labels,
              annotations: {
                summary: 'A Cortex ring member is ACTIVE but dead: it must be forgotten.',
                description: memberText + ' is ACTIVE but its last heartbeat is {{ $value | humanizeDuration }} old (threshold %s): it died without leaving the ring and still owns tokens. Forget it once its process is confirmed gone.' % v.t.ghostAfter,
              },
            },
            {
              alert: 'CortexRingUnhealthyMembers',
              expr: 'ringwatch:ring_unhealthy_domains:count%s > %s' % [sel(v), u.num(v.t.maxUnhealthyDomains)],
              'for': v.t.unhealthyFor,
              labels: { severity: v.t.unhealthySeverity } + v.labels,
              annotations: {
                summary: 'Too many stale members in a Cortex ring for its replication to hold.',
                description: 'Ring {{ $labels.ring }} in table {{ $labels.table }} has stale members in {{ $value }} failure domains (zones, or members if the ring has no zones); at most %s can be lost. Writes and reads of some series fail their quorum.' % v.t.maxUnhealthyDomains,
              },
            },
          ]
          for v in p.ringVariants
        ]),
      },
    ],
  },
}
