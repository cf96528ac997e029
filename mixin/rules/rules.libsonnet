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
            record: 'ringwatch:member_heartbeat_age_seconds:max',
            expr: p.withZone(p.dedup('max', 'ringwatch_member_heartbeat_age_seconds{%s}' % rw)),
          },
          {
            // Time since any replica last saw the member's version change (ringwatch's clock).
            record: 'ringwatch:member_cas_age_seconds:min',
            expr: p.withZone('(time() - %s)' % p.dedup('max', 'ringwatch_member_cas_last_change_timestamp_seconds{%s}' % rw)),
          },
          {
            // The member's current state (value 1), whatever --metrics.member-states says.
            record: 'ringwatch:member_state:current',
            expr: p.withZone(p.dedup('max', 'ringwatch_member_state{%s} == 1' % rw)),
          },
          {
            record: 'ringwatch:member_token_ownership_ratio:max',
            expr: p.withZone(p.dedup('max', 'ringwatch_member_token_ownership_ratio{%s}' % rw)),
          },
        ] + [
          {
            // 1 if the member's heartbeat is older than the ring's heartbeatStaleAfter, else 0.
            record: 'ringwatch:member_heartbeat_stale:bool',
            expr: 'ringwatch:member_heartbeat_age_seconds:max%s > bool %s' % [
              if v.matcher == '' then '' else '{%s}' % v.matcher,
              u.num(u.seconds(v.t.heartbeatStaleAfter)),
            ],
            [if v.labels != {} then 'labels']: v.labels,
          }
          for v in p.ringVariants
        ] + [
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
