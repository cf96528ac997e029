// Helpers shared by rules, alerts and dashboards.
local units = { y: 31536000, w: 604800, d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
// Character sets as objects: std.member on strings is very slow in the C++ jsonnet.
local charSet(s) = { [c]: true for c in std.stringChars(s) };
local numberChars = charSet('0123456789.');
local regexSpecial = charSet('.+*?()[]{}|^$\\');

{
  // '1h30m' -> 5400, '500ms' -> 0.5; numbers are taken as seconds.
  seconds(d)::
    if std.isNumber(d) then d
    else
      local step(acc, c) =
        if std.objectHas(numberChars, c) then
          if acc.unit != '' then { total: acc.total + std.parseJson(acc.num) * units[acc.unit], num: c, unit: '' }
          else acc { num: acc.num + c }
        else acc { unit: acc.unit + c };
      local r = std.foldl(step, std.stringChars(d), { total: 0, num: '', unit: '' });
      assert r.num != '' && std.objectHas(units, r.unit) : 'bad duration %s' % d;
      r.total + std.parseJson(r.num) * units[r.unit],

  // Seconds -> the shortest Prometheus duration ('300s' -> '5m').
  duration(s)::
    if s == 0 then '0s'
    else if s < 1 || std.floor(s) != s then '%dms' % std.floor(s * 1000 + 0.5)
    else if s % 3600 == 0 then '%dh' % (s / 3600)
    else if s % 60 == 0 then '%dm' % (s / 60)
    else '%ds' % s,

  // Number as PromQL literal without a trailing '.0'.
  num(x):: if std.floor(x) == x then '%d' % x else std.toString(x),

  // Escape a literal for use inside a PromQL regex string.
  regexEscape(s)::
    std.join('', [if std.objectHas(regexSpecial, c) then '\\\\' + c else c for c in std.stringChars(s)]),

  // Join a list of label names: ['a', 'b'] -> 'a, b'.
  labels(l):: std.join(', ', std.set(l)),

  // Join selector fragments, dropping empty ones.
  sel(parts):: std.join(', ', [p for p in parts if p != null && p != '']),

  // How an alert's description names a member (labels of the member series with zone).
  memberText:: 'Member {{ $labels.member }}{{ with $labels.member_zone }} (zone {{ . }}){{ end }} of ring {{ $labels.ring }} in table {{ $labels.table }}',

  // A multi-line PromQL block set into a `|||` block at `n` spaces: every line after the first indented by
  // n, the trailing newline dropped.
  indent(text, n)::
    std.join('\n' + std.repeat(' ', n), std.split(std.rstripChars(text, '\n'), '\n')),

  // `matchers` as a PromQL label selector: '{a, b}', or '' when there are none.
  selector(matchers):: if matchers == '' then '' else '{%s}' % matchers,
}
