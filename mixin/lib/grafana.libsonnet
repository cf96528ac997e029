// Just enough Grafana JSON model for the ringwatch dashboards (grafonnet is not available offline).
// Panels are laid out left to right in rows of 24 units; only timeseries, stat, bargauge, table and text.
local ds = { type: 'prometheus', uid: '${datasource}' };

{
  dashboard(cfg, key, title, variables, rows, annotations=[]):: {
    uid: cfg.dashboardUIDPrefix + key,
    title: cfg.dashboardTitlePrefix + title,
    tags: cfg.dashboardTags,
    timezone: cfg.dashboardTimezone,
    refresh: cfg.dashboardRefresh,
    time: { from: cfg.dashboardTimeFrom, to: 'now' },
    schemaVersion: 39,
    editable: true,
    graphTooltip: 1,
    annotations: { list: [$.builtinAnnotation] + annotations },
    links: [{
      type: 'dashboards',
      title: 'ringwatch',
      tags: cfg.dashboardTags,
      asDropdown: true,
      includeVars: true,
      keepTime: true,
    }],
    templating: { list: [$.datasourceVariable(cfg)] + variables },
    panels: $.layout(rows),
  },

  // Grafana's own annotations (manual ones, alerting of Grafana itself), as every new dashboard has.
  builtinAnnotation:: {
    builtIn: 1,
    datasource: { type: 'grafana', uid: '-- Grafana --' },
    enable: true,
    hide: true,
    iconColor: 'rgba(0, 211, 255, 1)',
    name: 'Annotations & Alerts',
    type: 'dashboard',
  },

  // Firing Prometheus alerts (the ALERTS series) matching `selector`, drawn as annotations.
  alertAnnotation(name, selector):: {
    name: name,
    datasource: ds,
    enable: true,
    hide: false,
    iconColor: 'red',
    expr: 'ALERTS{%s}' % selector,
    step: '60s',
    titleFormat: '{{alertname}}',
    textFormat: '{{severity}}: table {{table}} ring {{ring}} {{member}}',
    tagKeys: 'alertname,severity',
    useValueForTime: false,
  },

  // Links from a panel to the runbook entries of the alerts it backs; add with `panel + g.runbook(...)`.
  runbook(cfg, alerts):: {
    links: [
      { title: 'Runbook: %s' % a, url: '%s#%s' % [cfg.runbookURLBase, std.asciiLower(a)], targetBlank: true }
      for a in alerts
    ],
  },

  datasourceVariable(cfg):: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: { text: cfg.dashboardDatasource, value: cfg.dashboardDatasource },
    hide: 0,
    refresh: 1,
    regex: '',
  },

  // A multi-value query variable over label_values(metric, label).
  variable(name, metric, label=name):: {
    name: name,
    label: name,
    type: 'query',
    datasource: ds,
    definition: 'label_values(%s, %s)' % [metric, label],
    query: { query: 'label_values(%s, %s)' % [metric, label], refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    sort: 1,
    hide: 0,
    current: { selected: true, text: ['All'], value: ['$__all'] },
  },

  // rows: [[panel, ...], ...]; each panel has w (width) and h (height) set by the helpers below.
  layout(rows)::
    local heights = [std.foldl(std.max, [p.h for p in row], 0) for row in rows];
    local ys = std.foldl(function(acc, h) acc + [acc[std.length(acc) - 1] + h], heights, [0]);
    local flat = std.flattenArrays([
      local xs = std.foldl(function(acc, p) acc + [acc[std.length(acc) - 1] + p.w], rows[r], [0]);
      [
        rows[r][i] { gridPos: { x: xs[i], y: ys[r], w: rows[r][i].w, h: rows[r][i].h } }
        for i in std.range(0, std.length(rows[r]) - 1)
      ]
      for r in std.range(0, std.length(rows) - 1)
    ]);
    [
      { [k]: flat[i][k] for k in std.objectFields(flat[i]) if k != 'w' && k != 'h' } + { id: i + 1 }
      for i in std.range(0, std.length(flat) - 1)
    ],

  target(expr, legend='', instant=false, format=null, ref='A'):: {
    datasource: ds,
    expr: expr,
    legendFormat: legend,
    refId: ref,
    [if instant then 'instant']: true,
    [if instant then 'range']: false,
    [if format != null then 'format']: format,
  },

  // unitOf: {refId: unit} for the queries of a panel whose unit differs from the panel's.
  local base(type, title, description, targets, unit, w, h, unitOf={}) = {
    type: type,
    title: title,
    description: description,
    datasource: ds,
    targets: [targets[i] { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1)],
    fieldConfig: {
      defaults: { unit: unit },
      overrides: [
        { matcher: { id: 'byFrameRefID', options: ref }, properties: [{ id: 'unit', value: unitOf[ref] }] }
        for ref in std.objectFields(unitOf)
      ],
    },
    w: w,
    h: h,
  },

  // Every panel names its unit: 's' for seconds, 'short' for plain counts.
  timeseries(title, description, targets, unit, w=12, h=8, stack=false, unitOf={}):: base('timeseries', title, description, targets, unit, w, h, unitOf) {
    fieldConfig+: { defaults+: { custom: {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: if stack then 60 else 10,
      showPoints: 'never',
      spanNulls: false,
      stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
    } } },
    options: { legend: { showLegend: true, displayMode: 'table', placement: 'right', calcs: ['lastNotNull', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },

  stat(title, description, targets, unit, w=6, h=4, thresholds=null):: base('stat', title, description, targets, unit, w, h) {
    fieldConfig+: { defaults+: {
      thresholds: {
        mode: 'absolute',
        steps: if thresholds == null then [{ color: 'green', value: null }] else thresholds,
      },
    } },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'none', textMode: 'auto' },
  },

  bargauge(title, description, targets, unit, w=12, h=8, max=null):: base('bargauge', title, description, targets, unit, w, h) {
    fieldConfig+: { defaults+: { min: 0, [if max != null then 'max']: max } },
    options: { orientation: 'horizontal', displayMode: 'gradient', showUnfilled: true, reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } },
  },

  // An instant table of one query; sortBy names a column, sorted descending.
  table(title, description, targets, unit, w=24, h=8, sortBy='Value', hide=['Time', 'job', '__name__']):: base('table', title, description, targets, unit, w, h) {
    options: { showHeader: true, sortBy: [{ displayName: sortBy, desc: true }] },
    transformations: [{ id: 'organize', options: { excludeByName: { [c]: true for c in hide } } }],
  },

  text(title, content, w=24, h=3):: {
    type: 'text',
    title: title,
    options: { mode: 'markdown', content: content },
    w: w,
    h: h,
  },
}
