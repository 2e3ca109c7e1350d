// Elements and attributes that only an injection puts in a Ticketer page. Flask-Admin's own
// templates carry a few inline handlers (delete confirm, filters, actions); they are listed so
// that anything else is reported. Returns a list of findings (empty: clean).
() => {
  const known = [
    /^return faHelpers\.safeConfirm\(/,
    /^return modelActions\.execute\('[a-z_]+'\);?$/,
    /^return false;?$/,
    /^faForm\.addInlineField\(/,
  ];
  const urlAttributes = ['href', 'src', 'action', 'formaction', 'data', 'xlink:href', 'poster', 'background'];
  const found = [];
  const origin = document.location.origin;
  const sameOrigin = (url) => {
    try {
      return new URL(url, document.baseURI).origin === origin;
    } catch (e) {
      return false;
    }
  };
  for (const el of document.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase();
      const value = attr.value;
      if (name.startsWith('on') && !known.some((re) => re.test(value.trim()))) {
        found.push(`<${tag} ${name}="${value}">`);
      }
      if (urlAttributes.includes(name)) {
        const squashed = value.replace(/[\u0000-\u0020]/g, '').toLowerCase();
        const script = squashed.startsWith('javascript:') && squashed !== 'javascript:void(0)';
        if (script || squashed.startsWith('data:text/html')) {
          found.push(`<${tag} ${name}="${value}">`);
        }
      }
      if (name === 'srcdoc') {
        found.push(`<${tag} srcdoc>`);
      }
    }
    if (['iframe', 'frame', 'frameset', 'object', 'embed', 'base', 'applet'].includes(tag)) {
      found.push(`<${tag}>`);
    }
    if (tag === 'meta' && /refresh|content-security-policy|set-cookie/i.test(el.httpEquiv || '')) {
      found.push('<meta http-equiv>');
    }
    if (tag === 'script' && !el.src && !el.nonce) {
      found.push('<script> without nonce: ' + el.textContent.slice(0, 80));
    }
    if (tag === 'script' && el.src && !sameOrigin(el.src)) {
      found.push('<script src> elsewhere: ' + el.src);
    }
    if (tag === 'link' && el.href && !sameOrigin(el.href)) {
      found.push('<link> elsewhere: ' + el.href);
    }
    if (tag === 'style' && !el.nonce) {
      found.push('<style> without nonce');
    }
  }
  return found;
}
