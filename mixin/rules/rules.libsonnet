// Recording rules: member series gated on ringwatch seeing the table and folded over replicas, with the
// member's zone joined in; stale counts per ring and per zone; ring roll-ups; StatefulSet rollouts.
// Rules of one group run in order, so later rules read earlier ones at the same evaluation.
local u = import '../lib/utils.libsonnet';

{
  prometheusRules+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local rw = p.rw,
    local J = u.labels(cfg.rolloutJoinLabels + ['statefulset']),
    local ksm(metric, re) = '%s{%s}' % [metric, u.sel([cfg.kubeStateMetricsSelector, 'statefulset=~"%s"' % re])],

    groups+: [
      {
        name: 'ringwatch.rules',
        rules: [
          {
            // One series per member carrying its zone; topk keeps it unique if replicas briefly disagree.
            record: 'ringwatch:member_zone:info',
            expr: 'topk by (%s) (1, max without (addr) (%s))' % [
              p.memberOn,
              p.dedup('max', 'ringwatch_member_info{%s}' % rw),
            ],
          },
          {
            // Heartbeat age at ringwatch's last scan (the exporter's judgement input, not time() - timestamp:
            // that would add scan and scrape lag to every healthy member's age).
            record: 'ringwatch:member_heartbeat_age_seconds:max',
            expr: p.heartbeatAge,
          },
          {
            // Time since the earliest replica saw the member's current version (ringwatch's clock); the
            // earliest, so that a restarted replica's fresh "first seen" does not reset it.
            record: 'ringwatch:member_cas_age_seconds:min',
            expr: p.withZone('(time() - %s)' % p.dedup('min', 'ringwatch_member_cas_last_change_timestamp_seconds{%s}' % rw)),
          },
          {
            // The member's current state (value 1), whatever --metrics.member-states says.
            record: 'ringwatch:member_state:current',
            expr: p.withZone(p.dedupOnes('max', 'ringwatch_member_state{%s}' % rw)),
          },
          {
            record: 'ringwatch:member_token_ownership_ratio:max',
            expr: p.withZone(p.dedup('max', 'ringwatch_member_token_ownership_ratio{%s}' % rw)),
          },
          {
            // The member's heartbeat period as ringwatch learned it (absent until known).
            record: 'ringwatch:member_heartbeat_period_seconds:max',
            expr: p.withZone(p.dedup('max', 'ringwatch_member_heartbeat_period_seconds{%s}' % rw)),
          },
          {
            // The age past which ringwatch calls the member stale (its own judgement, published).
            record: 'ringwatch:member_heartbeat_stale_threshold_seconds',
            expr: p.heartbeatStaleThreshold,
          },
          {
            // 1 if the member's heartbeat age exceeds its stale threshold, else 0: what ringwatch calls stale.
            record: 'ringwatch:member_heartbeat_stale:bool',
            expr: 'ringwatch:member_heartbeat_age_seconds:max > bool ringwatch:member_heartbeat_stale_threshold_seconds',
          },
          {
            record: 'ringwatch:zone_stale_members:sum',
            expr: 'sum without (member) (ringwatch:member_heartbeat_stale:bool)',
          },
          {
            record: 'ringwatch:ring_stale_members:sum',
            expr: 'sum without (member, member_zone) (ringwatch:member_heartbeat_stale:bool)',
          },
          {
            // Failure domains with a stale member: a zone in a zone-aware ring, else the member itself.
            record: 'ringwatch:ring_unhealthy_domains:count',
            expr: |||
              count without (domain, member, member_zone) (
                label_replace(sum without (member) (ringwatch:member_heartbeat_stale:bool{member_zone!=""}) > 0, "domain", "$1", "member_zone", "(.*)")
                or
                label_replace(ringwatch:member_heartbeat_stale:bool{member_zone=""} == 1, "domain", "$1", "member", "(.*)")
              )
            |||,
          },
          {
            // Failure domains per ring: zones in a zone-aware ring, members in a ring without zones.
            record: 'ringwatch:ring_failure_domains:count',
            expr: |||
              count without (member_zone) (count without (member) (ringwatch:member_zone:info{member_zone!=""}))
              or
              count without (member, member_zone) (ringwatch:member_zone:info{member_zone=""})
            |||,
          },
        ] + [
          {
            // Failure domains the quorum tolerates: RF - (floor(RF/2) + 1), RF = min(replicationFactor, domains).
            record: 'ringwatch:ring_tolerated_failure_domains:count',
            expr: |||
              clamp_max(ringwatch:ring_failure_domains:count%(m)s, %(rf)s)
              - (floor(clamp_max(ringwatch:ring_failure_domains:count%(m)s, %(rf)s) / 2) + 1)
            ||| % { m: if v.matcher == '' then '' else '{%s}' % v.matcher, rf: u.num(v.t.replicationFactor) },
            [if v.labels != {} then 'labels']: v.labels,
          }
          for v in p.ringVariants
        ] + [
          {
            record: 'ringwatch:ring_members:max',
            expr: p.dedup('max', 'ringwatch_ring_members{%s}' % rw),
          },
          {
            record: 'ringwatch:zone_token_ownership_ratio:sum',
            expr: 'sum without (member) (ringwatch:member_token_ownership_ratio:max)',
          },
        ] + (
          local sts = p.rolloutStatefulSets;
          if std.length(sts) == 0 then [] else [{
            // 1 per StatefulSet being updated, labelled with the ring its pods belong to.
            record: 'ringwatch:statefulset_update_in_progress:ring',
            expr: std.join('\nor\n', [
              std.rstripChars(|||
                label_replace(group by (%(J)s) (
                  (%(upd)s unless %(cur)s)
                  or
                  (%(updated)s < %(replicas)s)
                ), "ring", "%(ring)s", "", "")
              ||| % {
                J: J,
                ring: ring,
                upd: ksm('kube_statefulset_status_update_revision', sts[ring]),
                cur: ksm('kube_statefulset_status_current_revision', sts[ring]),
                updated: ksm('kube_statefulset_status_replicas_updated', sts[ring]),
                replicas: ksm('kube_statefulset_replicas', sts[ring]),
              }, '\n')
              for ring in std.objectFields(sts)
            ]),
          }]
        ),
      },
    ],
  },
}
