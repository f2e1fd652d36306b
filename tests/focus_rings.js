/* Every control that takes focus: is its focus ring a solid outline of 2 px or more, at 3:1 or more
   against the background behind it? The ring is drawn outside the control (outline-offset), over
   its parent's background, composited from the page down. Returns how many were checked and
   the ones that fail, described.
   Run by tests/test_browser_a11y.py with page.evaluate (a function expression). */
() => {
  const rgba = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const contrast = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const behind = el => { const chain = []; for (let e = el; e; e = e.parentElement) chain.unshift(e);
    let c = {r: 255, g: 255, b: 255};
    for (const e of chain) { const p = rgba(getComputedStyle(e).backgroundColor); if (!p || !p.a) continue;
      c = {r: p.r * p.a + c.r * (1 - p.a), g: p.g * p.a + c.g * (1 - p.a), b: p.b * p.a + c.b * (1 - p.a)}; }
    return c; };
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\s+/).join(".") : "") +
    ' "' + (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 30) + '"';
  const controls = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
    .filter(e => !e.disabled && e.getClientRects().length);
  const bad = [];
  let checked = 0;
  for (const el of controls.slice(0, 400)) {
    el.focus({preventScroll: true});
    if (document.activeElement !== el || !el.matches(":focus-visible")) continue;
    checked += 1;
    const s = getComputedStyle(el), ring = rgba(s.outlineColor);
    const ratio = s.outlineStyle === "none" || parseFloat(s.outlineWidth) < 2 || !ring || !ring.a ? 0
      : contrast(ring, behind(el.parentElement));
    if (ratio < 3) bad.push(`${name(el)}: ${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}, ${ratio.toFixed(2)}:1`);
  }
  if (document.activeElement) document.activeElement.blur();
  return {checked, bad};
}
