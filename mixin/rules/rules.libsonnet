// Recording rules: member series gated on ringwatch seeing the table and folded over replicas, with the
// member's zone joined in; stale counts per ring and per zone; ring roll-ups; StatefulSet rollouts.
// Rules of one group run in order, so later rules read earlier ones at the same evaluation.
local u = import '../lib/utils.libsonnet';

{
  prometheusRules+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local f = p.fmt,
    // A member series of ringwatch, gated and folded (p.member), with the member's zone.
    local withZone(expr) = |||
      %s
      * on (%s) group_left (member_zone)
      member:ringwatch_member_info:max
    ||| % [u.indent(expr, 0), f.member],
    local ksm(metric, re) = '%s{%s}' % [metric, u.sel([cfg.kubeStateMetricsSelector, 'statefulset=~"%s"' % re])],

    groups+: [
      {
        name: 'ringwatch.rules',
        rules: [
          {
            // One series per member carrying its zone; topk keeps it unique if replicas briefly disagree.
            record: 'member:ringwatch_member_info:max',
            expr: |||
              topk by (%(member)s) (1, max without (addr) (
                %(info)s
              ))
            ||| % (f { info: u.indent(p.member('max', 'ringwatch_member_info'), 2) }),
          },
          {
            // Heartbeat age at ringwatch's last scan (the exporter's judgement input, not time() - timestamp:
            // that would add scan and scrape lag to every healthy member's age).
            record: 'member:ringwatch_member_heartbeat_age_seconds:max',
            expr: withZone(p.member('max', 'ringwatch_member_heartbeat_age_seconds')),
          },
          {
            // Time since the earliest replica saw the member's current version (ringwatch's clock); the
            // earliest, so that a restarted replica's fresh "first seen" does not reset it.
            record: 'member:ringwatch_member_cas_last_change_timestamp_seconds:age_min',
            expr: withZone('(time() - %s)' % p.member('min', 'ringwatch_member_cas_last_change_timestamp_seconds')),
          },
          {
            // The member's current state (value 1), whatever --metrics.member-states says. A bridged state
            // (the last value of a series gone missing) counts only for a member with no current state
            // series: with --metrics.member-states=current a member leaving PENDING must not stay PENDING
            // for gapTolerance.
            record: 'member:ringwatch_member_state:max',
            expr: withZone(|||
              max without (%(replica)s) (
                (
                  last_over_time(ringwatch_member_state{%(rw)s}[%(gap)s]) == 1
                  unless on (%(replicaMember)s)
                  ringwatch_member_state{%(rw)s} == 1
                  or
                  ringwatch_member_state{%(rw)s} == 1
                )
                and on (%(replicaTable)s) (max_over_time(ringwatch_up{%(rw)s}[%(gap)s]) == 1)
              )
            ||| % f),
          },
          {
            record: 'member:ringwatch_member_token_ownership_ratio:max',
            expr: withZone(p.member('max', 'ringwatch_member_token_ownership_ratio')),
          },
          {
            // The member's heartbeat period as ringwatch learned it (absent until known).
            record: 'member:ringwatch_member_heartbeat_period_seconds:max',
            expr: withZone(p.member('max', 'ringwatch_member_heartbeat_period_seconds')),
          },
          {
            // The age past which ringwatch calls the member stale (its own judgement, published).
            record: 'member:ringwatch_member_heartbeat_stale_threshold_seconds:max',
            expr: withZone(p.member('max', 'ringwatch_member_heartbeat_stale_threshold_seconds')),
          },
          {
            // 1 if the member's heartbeat age exceeds its stale threshold, else 0: what ringwatch calls stale.
            record: 'member:ringwatch_member_stale:bool',
            expr: |||
              member:ringwatch_member_heartbeat_age_seconds:max
              > bool
              member:ringwatch_member_heartbeat_stale_threshold_seconds:max
            |||,
          },
          {
            record: 'zone:ringwatch_member_stale:sum',
            expr: 'sum without (member) (member:ringwatch_member_stale:bool)',
          },
          {
            record: 'ring:ringwatch_member_stale:sum',
            expr: 'sum without (member, member_zone) (member:ringwatch_member_stale:bool)',
          },
          {
            // Failure domains with a stale member: a zone in a zone-aware ring, else the member itself.
            record: 'ring:ringwatch_unhealthy_failure_domains:count',
            expr: |||
              count without (domain, member, member_zone) (
                label_replace(
                  sum without (member) (member:ringwatch_member_stale:bool{member_zone!=""}) > 0,
                  "domain", "$1", "member_zone", "(.*)"
                )
                or
                label_replace(
                  member:ringwatch_member_stale:bool{member_zone=""} == 1,
                  "domain", "$1", "member", "(.*)"
                )
              )
            |||,
          },
          {
            // Failure domains per ring: zones in a zone-aware ring, members in a ring without zones.
            record: 'ring:ringwatch_failure_domains:count',
            expr: |||
              count without (member_zone) (count without (member) (member:ringwatch_member_info:max{member_zone!=""}))
              or
              count without (member, member_zone) (member:ringwatch_member_info:max{member_zone=""})
            |||,
          },
        ] + [
          {
            // Failure domains the quorum tolerates: RF - (floor(RF/2) + 1), RF = min(replicationFactor, domains).
            record: 'ring:ringwatch_failure_domains_tolerated:count',
            expr: |||
              clamp_max(ring:ringwatch_failure_domains:count%(sel)s, %(rf)s)
              - (floor(clamp_max(ring:ringwatch_failure_domains:count%(sel)s, %(rf)s) / 2) + 1)
            ||| % { sel: u.selector(v.matcher), rf: u.num(v.t.replicationFactor) },
            [if v.labels != {} then 'labels']: v.labels,
          }
          for v in p.variants(['replicationFactor'])
        ] + [
          {
            record: 'ring:ringwatch_ring_members:max',
            expr: p.member('max', 'ringwatch_ring_members'),
          },
          {
            record: 'zone:ringwatch_member_token_ownership_ratio:sum',
            expr: 'sum without (member) (member:ringwatch_member_token_ownership_ratio:max)',
          },
        ] + (
          local sts = p.rolloutStatefulSets;
          if std.length(sts) == 0 then [] else [{
            // 1 per StatefulSet being updated, labelled with the ring its pods belong to.
            record: 'statefulset_ring:kube_statefulset_update_in_progress:group',
            expr: std.join('or\n', [
              |||
                label_replace(group by (%(J)s) (
                  (%(upd)s unless %(cur)s)
                  or
                  (%(updated)s < %(replicas)s)
                ), "ring", "%(ring)s", "", "")
              ||| % {
                J: u.labels(cfg.rolloutJoinLabels + ['statefulset']),
                ring: ring,
                upd: ksm('kube_statefulset_status_update_revision', sts[ring]),
                cur: ksm('kube_statefulset_status_current_revision', sts[ring]),
                updated: ksm('kube_statefulset_status_replicas_updated', sts[ring]),
                replicas: ksm('kube_statefulset_replicas', sts[ring]),
              }
              for ring in std.objectFields(sts)
            ]),
          }]
        ),
      },
    ],
  },
}
