// Stalled rollouts: members stuck in a transitional state, or stale members while a StatefulSet that
// carries the ring is being updated (kube-state-metrics).
local u = import '../lib/utils.libsonnet';

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local stuck = { JOINING: 'joiningStuckFor', PENDING: 'pendingStuckFor', LEAVING: 'leavingStuckFor' },
    // Ring series name Cortex's namespace in cortexNamespaceLabel where the ServiceMonitor sets it, else
    // in their own namespace label (ringwatch scraped in Cortex's namespace).
    local ns = cfg.namespaceLabel,
    local cns = cfg.cortexNamespaceLabel,
    local join = u.labels(cfg.rolloutJoinLabels + ['ring']),

    groups+: [
      {
        name: 'ringwatch-rollout',
        rules: [
          {
            alert: 'CortexRingRolloutStalled',
            expr: 'member:ringwatch_member_state:max{%s}' % u.sel(['state="%s"' % state, v.matcher]),
            'for': v.t[stuck[state]],
            // `state` repeats the series' own label; it keeps the rules apart for promtool's lint.
            labels: { severity: v.t.rolloutSeverity, state: state } + v.labels,
            annotations: {
              summary: 'A Cortex ring member is stuck in a transitional state.',
              description: u.memberText + ' has been %s for more than %s.' % [state, v.t[stuck[state]]],
            },
          }
          for state in std.objectFields(stuck)
          for v in p.variants([stuck[state], 'rolloutSeverity'])
          if v.t[stuck[state]] != null
        ] + [
          {
            alert: 'CortexRingRolloutStalled',
            expr: if cns == ns then |||
              ring:ringwatch_member_stale:sum%(sel)s > 0
              and on (%(join)s)
              statefulset_ring:kube_statefulset_update_in_progress:group
            ||| % { sel: u.selector(v.matcher), join: join } else |||
              (
                ring:ringwatch_member_stale:sum{%(cortexNs)s} > 0
                and on (%(cortexJoin)s)
                label_replace(statefulset_ring:kube_statefulset_update_in_progress:group, "%(cns)s", "$1", "%(ns)s", "(.*)")
              )
              or
              (
                ring:ringwatch_member_stale:sum{%(ownNs)s} > 0
                and on (%(join)s)
                statefulset_ring:kube_statefulset_update_in_progress:group
              )
            ||| % {
              cortexNs: u.sel([v.matcher, '%s!=""' % cns]),
              ownNs: u.sel([v.matcher, '%s=""' % cns]),
              cortexJoin: u.labels([if l == ns then cns else l for l in cfg.rolloutJoinLabels + ['ring']]),
              join: join,
              cns: cns,
              ns: ns,
            },
            'for': v.t.rolloutStaleFor,
            labels: { severity: v.t.rolloutSeverity } + v.labels,
            annotations: {
              summary: 'A Cortex StatefulSet rollout is stuck on stale ring members.',
              description: 'Ring {{ $labels.ring }} in table {{ $labels.table }} has had {{ $value }} stale members for more than %s while a StatefulSet carrying it is being updated: a pod is likely hung on shutdown and its item is frozen.' % v.t.rolloutStaleFor,
            },
          }
          for v in p.variants(['rolloutStaleFor', 'rolloutSeverity'])
          if std.length(p.rolloutStatefulSets) > 0
        ],
      },
    ],
  },
}
