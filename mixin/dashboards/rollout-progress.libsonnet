local g = import '../lib/grafana.libsonnet';
local u = import '../lib/utils.libsonnet';

function(cfg)
  local c = (import 'common.libsonnet')(cfg);
  local p = (import '../lib/promql.libsonnet')(cfg);
  local t = g.target;
  local stsRe = std.join('|', ['(%s)' % p.rolloutStatefulSets[r] for r in std.objectFields(p.rolloutStatefulSets)]);
  local ksm = u.sel([cfg.kubeStateMetricsSelector, c.cl, c.ns, 'statefulset=~"%s"' % (if stsRe == '' then '.+' else stsRe)]);
  local ing = u.sel([cfg.ingesterSelector, cfg.ingesterKVSelector, c.cl, c.ns]);
  local byIng = u.labels([l for l in cfg.ingesterInstanceLabels if l != 'job']);
  g.dashboard(cfg, 'rollout-progress', 'Rollout progress', c.variables, [
    [
      g.timeseries('StatefulSet replicas', 'Desired, updated and ready replicas of the StatefulSets that carry the rings (kube-state-metrics). A rollout that stops moving here while the ring shows a frozen member is stuck on that member.', [
        t('max by (namespace, statefulset) (kube_statefulset_replicas{%s})' % ksm, '{{statefulset}} desired'),
        t('max by (namespace, statefulset) (kube_statefulset_status_replicas_updated{%s})' % ksm, '{{statefulset}} updated'),
        t('max by (namespace, statefulset) (kube_statefulset_status_replicas_ready{%s})' % ksm, '{{statefulset}} ready'),
      ], unit='short', w=12),
      g.bargauge('Update progress', 'Updated replicas over desired replicas, per StatefulSet.', [
        t('max by (namespace, statefulset) (kube_statefulset_status_replicas_updated{%s}) / max by (namespace, statefulset) (kube_statefulset_replicas{%s})' % [ksm, ksm], '{{statefulset}}', instant=true),
      ], unit='percentunit', w=6, max=1),
      g.stat('StatefulSets updating', 'StatefulSets whose update revision differs from their current revision, or with replicas not yet updated.', [
        t('count(statefulset_ring:kube_statefulset_update_in_progress:group{%s}) or vector(0)' % u.sel([c.cl, c.ns]), 'updating'),
      ], unit='short', w=6, h=8, thresholds=[{ color: 'green', value: null }, { color: 'orange', value: 1 }]) + g.runbook(cfg, ['CortexRingRolloutStalled']),
    ],
    [
      g.timeseries('Ring members by state', 'Ring membership during the rollout: a clean restart shows a member LEAVING briefly, then PENDING, then ACTIVE again.', [t('sum by (table, ring, state) (ring:ringwatch_ring_members:max{%s}) > 0' % c.ring, '{{ring}} {{state}}')], unit='short', stack=true),
      g.timeseries('Ring freshness', 'Oldest heartbeat and stale members per ring.', [
        t('max by (table, ring) (member:ringwatch_member_heartbeat_age_seconds:max{%s})' % c.ring, '{{ring}} oldest heartbeat (s)'),
        t('sum by (table, ring) (ring:ringwatch_member_stale:sum{%s})' % c.ring, '{{ring}} stale members'),
      ], unit='s', unitOf={ B: 'short' }) + g.runbook(cfg, ['CortexRingRolloutStalled']),
    ],
    [
      g.table('Members in JOINING, LEAVING or PENDING', 'Value: time since the member registered (0 if unknown). Members stay LEAVING for their final sleep (30s by default); store-gateways stay JOINING for minutes.', [
        t(|||
          member:ringwatch_member_state:max{%(ring)s, state=~"JOINING|LEAVING|PENDING"}
          * on (%(on)s) group_left ()
          ((time() - (max without (%(R)s) (ringwatch_member_registered_timestamp_seconds{%(raw)s}) > 0)) or max without (%(R)s) (ringwatch_member_registered_timestamp_seconds{%(raw)s}))
        ||| % { ring: c.ring, on: p.memberOn, R: p.replicaLabels, raw: c.rawRing }, instant=true, format='table'),
      ], unit='s', w=12) + g.runbook(cfg, ['CortexRingRolloutStalled']),
      g.timeseries('Members in JOINING, LEAVING or PENDING', 'How long transitional states last, per ring.', [
        t('count by (table, ring, state) (member:ringwatch_member_state:max{%s, state=~"JOINING|LEAVING|PENDING"})' % c.ring, '{{ring}} {{state}}'),
      ], unit='short') + g.runbook(cfg, ['CortexRingRolloutStalled']),
    ],
    [
      g.text("Ingesters' own CAS", |||
        What the ingesters themselves report about their ring writes. Both panels are needed to tell the two
        shapes of a hung DynamoDB request apart: **with a deadline** on the heartbeat (current Cortex) attempts
        keep coming and fail, so `500` grows while `200` is flat; **without one** (Cortex versions whose DynamoDB client sets no request deadline)
        every counter, attempts included, goes flat while `/metrics` keeps answering. Either way `200` stops.
      |||, h=4),
    ],
    [
      g.timeseries('Ingester ring CAS by status', 'cortex_kv_request_duration_seconds_count{operation="CAS"} by status_code, per ingester.', [
        t('sum by (%s, status_code) (rate(cortex_kv_request_duration_seconds_count{%s, operation="CAS"}[$__rate_interval]))' % [byIng, ing], '{{instance}} {{status_code}}'),
      ], unit='reqps') + g.runbook(cfg, ['CortexIngesterCASFlatlined']),
      g.timeseries('Ingester ring CAS attempts', 'cortex_dynamodb_kv_cas_attempt_total per ingester: flat together with CAS 200 means a request hangs without a deadline.', [
        t('sum by (%s) (rate(cortex_dynamodb_kv_cas_attempt_total{%s}[$__rate_interval]))' % [byIng, ing], '{{instance}}'),
      ], unit='reqps') + g.runbook(cfg, ['CortexIngesterCASFlatlined']),
    ],
  ])
