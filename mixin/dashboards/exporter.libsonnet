local g = import '../lib/grafana.libsonnet';
local u = import '../lib/utils.libsonnet';

function(cfg)
  local c = (import 'common.libsonnet')(cfg);
  local t = g.target;
  local m = c.rawTable;
  local own = u.sel([cfg.ringwatchSelector, c.cl, c.rwNs]);
  g.dashboard(cfg, 'exporter', 'Exporter', c.variables, [
    [
      g.stat('Table scans OK', 'ringwatch_up per replica and table: 1 if the last scan succeeded.', [t('ringwatch_up{%s}' % m, '{{instance}} {{table}}')], unit='bool', w=8, thresholds=[{ color: 'red', value: null }, { color: 'green', value: 1 }]) + g.runbook(cfg, ['RingwatchScanFailing', 'RingwatchDown']),
      g.stat('Snapshot age', 'Time since the last successful scan, per replica and table.', [t('time() - ringwatch_last_successful_scan_timestamp_seconds{%s}' % m, '{{instance}} {{table}}')], unit='s', w=8) + g.runbook(cfg, ['RingwatchScanFailing']),
      g.table('Build', 'ringwatch_build_info of each replica.', [t('ringwatch_build_info{%s}' % own, instant=true, format='table')], unit='none', w=8, h=4, sortBy='instance', hide=['Time', '__name__', 'Value']),
    ],
    [
      g.timeseries('Scan duration', 'Whole scans of a table, failed ones included: median and 99th percentile.', [
        t('histogram_quantile(0.5, sum by (instance, table, le) (rate(ringwatch_scan_duration_seconds_bucket{%s}[$__rate_interval])))' % m, '{{instance}} {{table}} p50'),
        t('histogram_quantile(0.99, sum by (instance, table, le) (rate(ringwatch_scan_duration_seconds_bucket{%s}[$__rate_interval])))' % m, '{{instance}} {{table}} p99'),
      ], unit='s'),
      g.timeseries('Scan results', 'Scans per second by result: success, timeout, throttled, error.', [t('sum by (table, result) (rate(ringwatch_scans_total{%s}[$__rate_interval]))' % m, '{{table}} {{result}}')], unit='ops', stack=true) + g.runbook(cfg, ['RingwatchScanFailing']),
    ],
    [
      g.timeseries('Request latency', 'Each attempt of each DynamoDB request, by operation: 99th percentile and median.', [
        t('histogram_quantile(0.99, sum by (operation, le) (rate(ringwatch_request_duration_seconds_bucket{%s}[$__rate_interval])))' % m, '{{operation}} p99'),
        t('histogram_quantile(0.5, sum by (operation, le) (rate(ringwatch_request_duration_seconds_bucket{%s}[$__rate_interval])))' % m, '{{operation}} p50'),
      ], unit='s'),
      g.timeseries('Requests by result', 'Attempts per second by operation and result.', [t('sum by (operation, result) (rate(ringwatch_requests_total{%s}[$__rate_interval]))' % m, '{{operation}} {{result}}')], unit='reqps', stack=true),
    ],
    [
      g.timeseries('Throttling', "Throttled attempts per second: the table's read capacity, which Cortex's ring also uses, is exhausted.", [t('sum by (instance, table) (rate(ringwatch_requests_total{%s, result="throttled"}[$__rate_interval]))' % m, '{{instance}} {{table}}')], unit='reqps') + g.runbook(cfg, ['RingwatchDynamoDBThrottled']),
      g.timeseries('Consumed read capacity', 'Read capacity units per second consumed by ringwatch (ReturnConsumedCapacity).', [t('sum by (instance, table) (rate(ringwatch_consumed_capacity_units_total{%s}[$__rate_interval]))' % m, '{{instance}} {{table}}')], unit='suffix: RCU/s'),
    ],
    [
      g.timeseries('Decode errors', 'Items that could not be decoded, by reason; their members are missing from every ring metric.', [t('sum by (table, reason) (rate(ringwatch_decode_errors_total{%s}[$__rate_interval]))' % m, '{{table}} {{reason}}')], unit='ops') + g.runbook(cfg, ['RingwatchDecodeErrors']),
      g.timeseries('Snapshot age', 'Time since the last successful scan. Past --snapshot.max-age member series are no longer served.', [t('time() - ringwatch_last_successful_scan_timestamp_seconds{%s}' % m, '{{instance}} {{table}}')], unit='s') + g.runbook(cfg, ['RingwatchScanFailing']),
    ],
    [
      g.timeseries('Memory', 'Resident memory of each replica (process_resident_memory_bytes); the shipped Deployment limits it to 256 MiB.', [t('process_resident_memory_bytes{%s}' % own, '{{instance}}')], unit='bytes'),
      g.timeseries('CPU', 'CPU time per second of each replica (process_cpu_seconds_total): 1 is one core.', [t('rate(process_cpu_seconds_total{%s}[$__rate_interval])' % own, '{{instance}}')], unit='percentunit'),
    ],
  ])
