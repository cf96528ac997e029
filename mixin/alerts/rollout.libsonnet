// Stalled rollouts: members stuck in a transitional state, or stale members while a StatefulSet that
// carries the ring is being updated (kube-state-metrics).
local u = import '../lib/utils.libsonnet';

local memberText = 'Member {{ $labels.member }}{{ with $labels.member_zone }} (zone {{ . }}){{ end }} of ring {{ $labels.ring }} in table {{ $labels.table }}';

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local p = (import '../lib/promql.libsonnet')(cfg),
    local stuck = { JOINING: 'joiningStuckFor', PENDING: 'pendingStuckFor', LEAVING: 'leavingStuckFor' },

    groups+: [
      {
        name: 'ringwatch-rollout',
        rules: std.flattenArrays([
          [
            {
              alert: 'CortexRingRolloutStalled',
              expr: 'ringwatch:member_state:current{%s}' % u.sel(['state="%s"' % state, v.matcher]),
              'for': v.t[stuck[state]],
              // `state` repeats the series' own label; it keeps the rules apart for promtool's lint.
              labels: { severity: v.t.rolloutSeverity, state: state } + v.labels,
              annotations: {
                summary: 'A Cortex ring member is stuck in a transitional state.',
                description: memberText + ' has been %s for more than %s.' % [state, v.t[stuck[state]]],
              },
            }
            for state in std.objectFields(stuck)
            if v.t[stuck[state]] != null
          ] + (
            if std.length(p.rolloutStatefulSets) == 0 then [] else [{
              alert: 'CortexRingRolloutStalled',
              // Ring series name Cortex's namespace in cortexNamespaceLabel where the ServiceMonitor sets it,
              // else in their own namespace label (ringwatch scraped in Cortex's namespace).
              local ns = cfg.namespaceLabel,
              local cns = cfg.cortexNamespaceLabel,
              local stale(m) = 'ringwatch:ring_stale_members:sum%s > 0' % (if m == '' then '' else '{%s}' % m),
              local sts = 'ringwatch:statefulset_update_in_progress:ring',
              local join = cfg.rolloutJoinLabels + ['ring'],
              expr: if cns == ns then |||
                %s
                and on (%s)
                %s
              ||| % [stale(v.matcher), u.labels(join), sts] else |||
                (
                  %s
                  and on (%s)
                  label_replace(%s, "%s", "$1", "%s", "(.*)")
                )
                or
                (
                  %s
                  and on (%s)
                  %s
                )
              ||| % [
                stale(u.sel([v.matcher, '%s!=""' % cns])),
                u.labels([if l == ns then cns else l for l in join]),
                sts,
                cns,
                ns,
                stale(u.sel([v.matcher, '%s=""' % cns])),
                u.labels(join),
                sts,
              ],
              'for': v.t.rolloutStaleFor,
              labels: { severity: v.t.rolloutSeverity } + v.labels,
              annotations: {
                summary: 'A Cortex StatefulSet rollout is stuck on stale ring members.',
                description: 'Ring {{ $labels.ring }} in table {{ $labels.table }} has had {{ $value }} stale members for more than %s while a StatefulSet carrying it is being updated: a pod is likely hung on shutdown and its item is frozen.' % v.t.rolloutStaleFor,
              },
            }]
          )
          for v in p.ringVariants
        ]),
      },
    ],
  },
}
