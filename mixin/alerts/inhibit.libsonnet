// Alertmanager inhibition rules that ship with the alerts (rendered to mixin/alertmanager_inhibit_rules.yaml
// and used in deploy/alertmanager/alertmanager.yml). A label missing on both sides counts as equal.
// None mutes ringwatch's blindness or what it leaves unseen: while ringwatch cannot see a table its
// member alerts stop by themselves (gapTolerance), and RingwatchScanFailing or RingwatchDown, critical,
// says so.
{
  alertmanagerInhibitRules+:: {
    local cfg = $._config,
    local ring = [cfg.clusterLabel, cfg.namespaceLabel, 'table', 'ring'],
    local member = ring + ['member'],

    // No rule lets an alert mute one of higher severity: the rules between alerts of one member mute
    // only an alert of the same severity (`severity` in `equal`), whatever severities _config sets.
    inhibit_rules+: [
      {
        // A ghost is also stale and CAS-stalled; the ghost alert says what to do (forget it).
        source_matchers: ['alertname="CortexRingMemberGhost"'],
        target_matchers: ['alertname=~"CortexRingMemberHeartbeatStale|CortexRingMemberCASStalled"'],
        equal: member + ['severity'],
      },
      {
        // One page per frozen member: the stale alert comes first and says it all.
        source_matchers: ['alertname="CortexRingMemberHeartbeatStale"'],
        target_matchers: ['alertname="CortexRingMemberCASStalled"'],
        equal: member + ['severity'],
      },
      {
        // A ring that lost its quorum pages once for the ring; its per-member warnings wait.
        source_matchers: ['alertname="CortexRingUnhealthyMembers"', 'severity="critical"'],
        target_matchers: ['alertname=~"CortexRingMemberHeartbeatStale|CortexRingMemberCASStalled|CortexRingMemberGhost|CortexRingMemberClockSkewed"', 'severity=~"warning|info"'],
        equal: ring,
      },
    ],
  },
}
