local g = import '../lib/grafana.libsonnet';
local u = import '../lib/utils.libsonnet';

function(cfg)
  local c = (import 'common.libsonnet')(cfg);
  local p = (import '../lib/promql.libsonnet')(cfg);
  local t = g.target;
  local legend = '{{table}} {{ring}} {{member}}';
  local ringAlerts = 'alertname=~"CortexRing.*", alertstate="firing", %s' % c.ring;
  g.dashboard(cfg, 'ring-health', 'Ring health', c.variables, [
    [
      g.stat('Members', 'Members in the selected rings, as ringwatch last saw them.', [t('sum(ring:ringwatch_ring_members:max{%s})' % c.ring, 'members')], unit='short'),
      g.stat('Stale members', 'Members whose heartbeat is older than their stale threshold (4 heartbeat periods, at least 20s, by default).', [t('sum(ring:ringwatch_member_stale:sum{%s})' % c.ring, 'stale members')], unit='short', thresholds=[{ color: 'green', value: null }, { color: 'red', value: 1 }]) + g.runbook(cfg, ['CortexRingMemberHeartbeatStale', 'CortexRingUnhealthyMembers']),
      g.stat('Oldest heartbeat', 'Age of the oldest heartbeat in the selected rings.', [t('max(member:ringwatch_member_heartbeat_age_seconds:max{%s})' % c.ring, 'oldest heartbeat')], unit='s') + g.runbook(cfg, ['CortexRingMemberHeartbeatStale', 'CortexRingMemberGhost']),
      g.stat('Tables seen', 'Tables whose last scan succeeded on some ringwatch replica, out of those watched. Member panels stay empty for a table ringwatch cannot see.', [t('sum(max by (table) (ringwatch_up{%s})) / count(max by (table) (ringwatch_up{%s}))' % [c.rawTable, c.rawTable], 'tables seen')], unit='percentunit', thresholds=[{ color: 'red', value: null }, { color: 'green', value: 1 }]) + g.runbook(cfg, ['RingwatchScanFailing']),
    ],
    [
      g.timeseries('Members by state', 'Members of each ring by state (ringwatch_ring_members).', [t('sum by (table, ring, state) (ring:ringwatch_ring_members:max{%s}) > 0' % c.ring, '{{ring}} {{state}}')], unit='short', stack=true) + g.runbook(cfg, ['CortexRingRolloutStalled']),
      g.timeseries('Stale members per zone', 'Members whose heartbeat is older than their stale threshold, per zone.', [t('sum by (table, ring, member_zone) (zone:ringwatch_member_stale:sum{%s})' % c.ring, '{{ring}} zone {{member_zone}}')], unit='short') + g.runbook(cfg, ['CortexRingUnhealthyMembers']),
    ],
    [
      g.table('Heartbeat age per member, oldest first', "Age of each member's last heartbeat when ringwatch last read it; negative under clock skew.", [t('sort_desc(member:ringwatch_member_heartbeat_age_seconds:max{%s})' % c.ring, instant=true, format='table')], unit='s', h=10) + g.runbook(cfg, ['CortexRingMemberHeartbeatStale', 'CortexRingMemberGhost', 'CortexRingMemberClockSkewed']),
    ],
    [
      g.timeseries('Heartbeat age per member', 'A frozen member climbs in a straight line; a healthy one saws between 0 and its heartbeat period.', [t('member:ringwatch_member_heartbeat_age_seconds:max{%s}' % c.ring, legend)], unit='s', w=24) + g.runbook(cfg, ['CortexRingMemberHeartbeatStale', 'CortexRingMemberGhost']),
    ],
    [
      g.timeseries('CAS writes per member', "Successful CAS writes of each member's item (its version), per second. Zero: the member is not writing.", [t('max without (%s) (rate(ringwatch_member_cas_writes_total{%s}[$__rate_interval]))' % [p.replicaLabels, c.rawRing], legend)], unit='wps') + g.runbook(cfg, ['CortexRingMemberCASStalled']),
      g.timeseries('Time since last CAS', "Time since ringwatch last saw each member's version change.", [t('member:ringwatch_member_cas_last_change_timestamp_seconds:age_min{%s}' % c.ring, legend)], unit='s') + g.runbook(cfg, ['CortexRingMemberCASStalled']),
    ],
    [
      g.bargauge('Token ownership per member', 'Share of the token space each member owns.', [t('member:ringwatch_member_token_ownership_ratio:max{%s}' % c.ring, legend, instant=true)], unit='percentunit', w=8, h=10),
      g.bargauge('Token ownership per zone', "Share of each ring's token space owned by each zone.", [t('zone:ringwatch_member_token_ownership_ratio:sum{%s}' % c.ring, '{{ring}} zone {{member_zone}}', instant=true)], unit='percentunit', w=8, h=10, max=1),
      g.timeseries('Ownership spread across zones', 'Largest minus smallest zone share of each ring: 0 is perfectly balanced.', [t('max by (table, ring) (zone:ringwatch_member_token_ownership_ratio:sum{%s}) - min by (table, ring) (zone:ringwatch_member_token_ownership_ratio:sum{%s})' % [c.ring, c.ring], '{{table}} {{ring}}')], unit='percentunit', w=8, h=10),
    ],
  ], annotations=[
    g.alertAnnotation('Ring alerts', ringAlerts),
    g.alertAnnotation('ringwatch alerts', 'alertname=~"Ringwatch.*", alertstate="firing", %s' % c.table),
  ])
