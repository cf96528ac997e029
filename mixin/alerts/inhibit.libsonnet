// Alertmanager inhibition rules that ship with the alerts (rendered to mixin/alertmanager_inhibit_rules.yaml
// and used in deploy/alertmanager/alertmanager.yml). A label missing on both sides counts as equal.
{
  alertmanagerInhibitRules+:: {
    local cfg = $._config,
    local table = [cfg.clusterLabel, cfg.namespaceLabel, 'table'],
    local ring = table + ['ring'],
    local member = ring + ['member'],
    local memberAlerts = 'CortexRingMemberHeartbeatStale|CortexRingMemberCASStalled|CortexRingMemberGhost|CortexRingMemberClockSkewed|CortexRingRolloutStalled|CortexRingUnhealthyMembers',

    inhibit_rules+: [
      {
        // While ringwatch cannot scan a table, what it says about that table's members is old news
        // (the rules stop those alerts within gapTolerance; this also covers the alerts already firing).
        source_matchers: ['alertname="RingwatchScanFailing"'],
        target_matchers: ['alertname=~"%s"' % memberAlerts],
        equal: table,
      },
      {
        // A ghost is also stale and CAS-stalled; the ghost alert says what to do (forget it).
        source_matchers: ['alertname="CortexRingMemberGhost"'],
        target_matchers: ['alertname=~"CortexRingMemberHeartbeatStale|CortexRingMemberCASStalled"'],
        equal: member,
      },
      {
        // One page per frozen member: the stale alert comes first and says it all.
        source_matchers: ['alertname="CortexRingMemberHeartbeatStale"'],
        target_matchers: ['alertname="CortexRingMemberCASStalled"'],
        equal: member,
      },
      {
        // A ring that lost its quorum pages once for the ring; its per-member warnings wait.
        source_matchers: ['alertname="CortexRingUnhealthyMembers"'],
        target_matchers: ['alertname=~"CortexRingMemberHeartbeatStale|CortexRingMemberCASStalled|CortexRingMemberGhost|CortexRingMemberClockSkewed"', 'severity=~"warning|info"'],
        equal: ring,
      },
    ],
  },
}
