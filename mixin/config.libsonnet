// Every knob of the ringwatch mixin. Override with
//   (import 'mixin.libsonnet') + { _config+:: { ... } }
// or from Python: mixin/build.py render({...}) (deep-merged, so nested keys can be set one by one).
//
// Durations are written the Prometheus way ('90s', '5m', '1h30m'); thresholds that compare against
// a metric are converted to seconds in the expressions.
{
  _config+:: {
    // --- Selectors -------------------------------------------------------------------------------
    // Picks ringwatch's own scrape target(s) (job label from the ServiceMonitor in deploy/kubernetes).
    ringwatchSelector: 'job="ringwatch"',
    // Picks Cortex's ingester scrape targets; used by CortexIngesterCASFlatlined and the rollout dashboard.
    ingesterSelector: 'job=~"(.*/)?ingester.*"',
    // Picks the ingester's ring KV client among Cortex's KV clients (the lifecycler heartbeating the ring).
    ingesterKVSelector: 'kv_name="ingester-lifecycler"',
    // Labels that identify one ingester process (the alert is per process; `up` is joined on them).
    ingesterInstanceLabels: ['job', 'instance', 'pod'],
    // Picks kube-state-metrics, for StatefulSet rollout progress.
    kubeStateMetricsSelector: 'job="kube-state-metrics"',

    // --- Labels ------------------------------------------------------------------------------------
    // Label naming the Kubernetes/Prometheus cluster; kept in every aggregation and join, and the
    // dashboards' `cluster` variable. Absent labels are fine (they match as empty).
    clusterLabel: 'cluster',
    // Label naming the namespace on Cortex's and kube-state-metrics' series (and where ringwatch itself runs).
    namespaceLabel: 'namespace',
    // Label on ringwatch's series naming the namespace Cortex runs in, when ringwatch runs elsewhere: the
    // ServiceMonitor in deploy/kubernetes sets it as a target label (ringwatch runs in `monitoring`). Ring
    // series are joined to kube-state-metrics' and Cortex's `namespace` through it, and the dashboards'
    // `namespace` variable is Cortex's namespace. Ring series without it (ringwatch scraped in Cortex's own
    // namespace) join on their namespaceLabel; set this to namespaceLabel to drop the label altogether.
    cortexNamespaceLabel: 'cortex_namespace',
    // Labels on which ring series (ringwatch) are joined to StatefulSets (kube-state-metrics) for
    // CortexRingRolloutStalled; namespaceLabel here stands for Cortex's namespace (see cortexNamespaceLabel).
    rolloutJoinLabels: ['cluster', 'namespace'],
    // Labels that differ between two ringwatch replicas watching the same table; aggregated away so that
    // replicas never double an alert, and used to gate each replica's member series on its own ringwatch_up.
    ringwatchReplicaLabels: ['instance', 'pod'],

    // --- Rings and StatefulSets ------------------------------------------------------------------
    // Which StatefulSets (regex on the `statefulset` label of kube-state-metrics) carry the members of
    // which ring (RingKey). Rings not listed get no "stale while rolling out" alert.
    rolloutStatefulSets: {
      'collectors/ring': 'ingester.*',
      'collectors/store-gateway': 'store-gateway.*',
      'collectors/compactor': 'compactor.*',
    },

    // --- Per-ring thresholds --------------------------------------------------------------------
    // Defaults for every ring. Any of these can be overridden for one ring in ringOverrides.
    ringDefaults: {
      // CortexRingMemberHeartbeatStale: a member's heartbeat age at ringwatch's scan exceeds the stale
      // threshold ringwatch publishes for it (ringwatch_member_heartbeat_stale_threshold_seconds: the
      // exporter's --ring.stale-* flags judge, once, for /ring, `ringwatch scan` and these rules), for
      // this long. 0s: ringwatch's threshold already absorbs a late beat (several heartbeat periods; a
      // beat on time never crosses it), and every evaluation interval a `for:` spans is added to the
      // time to page (15s at 15s intervals, 30s at 30s). The first page for a frozen member: critical.
      heartbeatStaleFor: '0s',
      heartbeatStaleSeverity: 'critical',
      // CortexRingMemberCASStalled: the item's version has not changed for this long (ringwatch's clock)...
      casStalledAfter: '2m',
      // ...held for this long.
      casStalledFor: '1m',
      casStalledSeverity: 'critical',
      // CortexRingMemberGhost: an ACTIVE member whose heartbeat is older than this is dead without leaving...
      ghostAfter: '15m',
      // ...held for this long.
      ghostFor: '5m',
      // At least the stale alert's severity: a dead member that becomes a ghost pages on, and the ghost
      // alert, which says what to do, stands for its stale and CAS alerts (inhibition).
      ghostSeverity: 'critical',
      // CortexRingMemberClockSkewed: the heartbeat age (at scan) is beyond the stale threshold either
      // way while the item's version keeps moving: the member's clock (or ringwatch's) is off. Not a
      // ghost and not a hang; Cortex's ring readers judge heartbeats on their own clocks.
      clockSkewFor: '5m',
      clockSkewSeverity: 'info',
      // CortexRingRolloutStalled: a member has stayed in one of these states for longer than this.
      // JOINING/PENDING normally last seconds for ingesters; LEAVING lasts the final sleep (30s) plus any
      // flush on shutdown. null disables the rule for that state.
      joiningStuckFor: '10m',
      pendingStuckFor: '10m',
      leavingStuckFor: '15m',
      // CortexRingRolloutStalled: the ring has stale members while one of its StatefulSets is being updated,
      // for this long.
      rolloutStaleFor: '5m',
      rolloutSeverity: 'critical',
      // CortexRingUnhealthyMembers: stale members in more failure domains (zones in a zone-aware ring,
      // members in a ring without zones) than the quorum tolerates: RF - (floor(RF/2) + 1), with
      // RF = min(replicationFactor, failure domains). Set it to Cortex's -distributor.replication-factor
      // (or the store-gateway's); a ring whose only member is stale, or one of two, always pages.
      replicationFactor: 3,
      // ...held for this long.
      unhealthyFor: '1m',
      unhealthySeverity: 'critical',
    },
    // Per-ring overrides of ringDefaults, keyed by ring (RingKey). Each listed ring gets its own rule
    // variants; the default rules exclude it. Store-gateways stay JOINING for minutes while they wait
    // for a stable ring and load their blocks.
    ringOverrides: {
      'collectors/store-gateway': { joiningStuckFor: '30m' },
    },

    // --- Hiccups ------------------------------------------------------------------------------------
    // A member series that went missing (a failed scrape writes staleness markers) or a replica whose
    // last scan failed (ringwatch_up 0) still counts for this long, so that one hiccup resets no
    // `for:` clock. The price: member alerts stop this long after ringwatch goes blind.
    gapTolerance: '1m',
    // A member's item "moves" when its version changed within this window (longer than the longest
    // heartbeat period, 1m, plus a scan and a scrape); judged on Prometheus' own history of
    // ringwatch_member_cas_writes_total, so a ringwatch restart does not reset it.
    versionMovingWindow: '2m',

    // --- Ingester CAS ----------------------------------------------------------------------------
    // CortexIngesterCASFlatlined: an ingester that is up had no successful ring CAS in this window
    // (must span several heartbeat periods: 5s-1m)...
    ingesterCASWindow: '3m',
    // ...held for this long.
    ingesterCASFor: '2m',
    ingesterCASSeverity: 'critical',

    // --- ringwatch itself ------------------------------------------------------------------------
    // Going blind never silences a page: member alerts stop gapTolerance after ringwatch loses sight of
    // a table, and within the blind bound (about 3m after the last good scan or scrape, plus one
    // evaluation and group_wait) a critical alert says ringwatch cannot see it. A blip shorter than
    // about 2m pages nothing.
    // RingwatchScanFailing: last successful scan of a table older than this (a wedged scan loop and an
    // expired snapshot count too)...
    scanFailingAfter: '2m',
    // ...held for this long.
    scanFailingFor: '1m',
    scanFailingSeverity: 'critical',
    // RingwatchDown: every ringwatch target of the job down or absent for this long (one replica of two
    // down leaves the other watching: not blind).
    downFor: '3m',
    downSeverity: 'critical',
    // RingwatchDynamoDBThrottled: throttled requests per second above this, over the window, for so long.
    // Throttling of ringwatch means the table's read capacity, shared with Cortex, is exhausted.
    throttledThreshold: 0,
    throttledWindow: '5m',
    throttledFor: '10m',
    throttledSeverity: 'warning',
    // RingwatchDecodeErrors: any decode error over the window, held for so long.
    decodeErrorsWindow: '5m',
    decodeErrorsFor: '5m',
    decodeErrorsSeverity: 'warning',

    // --- Runbook and dashboards -------------------------------------------------------------------
    // Base of every alert's runbook_url; the anchor is the alert name lower-cased.
    runbookURLBase: 'https://github.com/ringwatch/ringwatch/blob/main/mixin/runbook.md',
    // Name of the default Prometheus datasource in the dashboards' datasource variable.
    dashboardDatasource: 'default',
    // Tags put on every dashboard (also used for the dashboards' links to each other).
    dashboardTags: ['ringwatch', 'cortex'],
    // Dashboard auto-refresh interval, and the default time range.
    dashboardRefresh: '30s',
    dashboardTimeFrom: 'now-3h',
    // Prefix of the dashboards' titles, and of their uids.
    dashboardTitlePrefix: 'ringwatch / ',
    dashboardUIDPrefix: 'ringwatch-',
    // Timezone of the dashboards ('browser' or 'utc').
    dashboardTimezone: 'utc',
  },
}
