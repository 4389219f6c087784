() => {
  // The chat page's script (rag/ui/page.py). The conversation lives here: the server answers one question at a time
  // and sends back that turn only (rag/ui/handlers.py), which this script appends and keeps in localStorage, so a
  // turn costs the same however long the conversation is. Questions go to the app's own "ask" endpoint over
  // gradio's HTTP API (one POST, one event stream per question) rather than through gradio's page events, whose
  // time per event was measured growing with the number of events a page had sent (about 1 ms more per event). Every fragment it inserts was escaped by the server
  // (rag/ui/render.py); text it writes itself (the question while it waits, history titles) goes in as textContent.
  // Kept in localStorage: an index of the conversations, and each turn under its own key, so that keeping a turn
  // writes that turn only (rewriting a whole long conversation every turn made turns slower as it grew).
  const INDEX = 'rag-conversations-v2';
  const TURN = 'rag-turn-v2:';
  const MAX_CONVERSATIONS = 50;
  const CONTEXT_QUESTIONS = 5; // as handlers.CONTEXT_QUESTIONS
  const CONTEXT_TURNS = 3; // as handlers.CONTEXT_TURNS
  const CONFIRM_AFTER = 3; // "New conversation" asks first when the chat has this many turns
  const $ = (selector, root = document) => root.querySelector(selector);
  const state = {conversations: [], current: null, pending: null, scope: new Map(), recall: null, libOffset: 0};

  const read = () => {
    try {
      const stored = JSON.parse(localStorage.getItem(INDEX) || '[]');
      return Array.isArray(stored) ? stored.filter((c) => c && c.id && c.count > 0) : [];
    } catch (error) {
      return [];
    }
  };
  const turnsOf = (c) => {
    if (!c.turns) {
      c.turns = [];
      for (let n = 0; n < c.count; n += 1) {
        try {
          const turn = JSON.parse(localStorage.getItem(`${TURN}${c.id}:${n}`) || 'null');
          if (turn) c.turns.push(turn);
        } catch (error) {
          break;
        }
      }
    }
    return c.turns;
  };
  const forget = (c) => {
    for (let n = 0; n < c.count; n += 1) localStorage.removeItem(`${TURN}${c.id}:${n}`);
  };
  const keep = (c, turn) => {
    // The newest conversations are kept when the browser's quota is reached.
    for (;;) {
      try {
        localStorage.setItem(`${TURN}${c.id}:${c.count - 1}`, JSON.stringify(turn));
        localStorage.setItem(INDEX, JSON.stringify(state.conversations.filter((k) => k.count).map(
          ({id, title, updated, count}) => ({id, title, updated, count}))));
        return;
      } catch (error) {
        const oldest = state.conversations.length > 1 ? state.conversations.pop() : null;
        if (!oldest) {
          notice('This browser has no room left to keep the conversation; it will not survive a reload.');
          return;
        }
        forget(oldest);
      }
    }
  };
  const conversation = () => state.conversations.find((c) => c.id === state.current);
  const newId = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

  const notice = (message, actions) => {
    const box = $('#rag-notice');
    if (!box) return;
    box.replaceChildren();
    if (!message) return;
    const line = document.createElement('p');
    line.className = actions ? 'rag-confirm' : 'rag-error';
    line.append(document.createTextNode(message));
    for (const [label, act] of actions || []) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = label;
      button.addEventListener('click', () => { notice(''); act(); });
      line.append(button);
    }
    box.append(line);
    if (actions) box.querySelector('button').focus();
  };

  // --- the conversation ---------------------------------------------------------------------------------------
  const log = () => $('#rag-log');
  const turnElement = (html, pending) => {
    const turn = document.createElement('div');
    turn.className = pending ? 'rag-turn rag-pending' : 'rag-turn';
    turn.innerHTML = html;
    return turn;
  };
  const showEmpty = () => {
    const box = log();
    const empty = document.createElement('div');
    empty.className = 'rag-empty';
    const intro = document.createElement('p');
    intro.innerHTML = '<b>Ask a question about the indexed articles</b>, or start from an example:';
    empty.append(intro);
    for (const example of JSON.parse(box.dataset.examples || '[]')) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'rag-suggest';
      button.dataset.question = example;
      button.textContent = example;
      empty.append(button);
    }
    box.replaceChildren(empty);
  };
  const render = () => {
    const box = log();
    if (!box) return;
    const current = conversation();
    if (!current || !current.count) showEmpty();
    else box.replaceChildren(...turnsOf(current).map((turn) => turnElement(turn.html, false)));
    renderHistory();
  };
  const scrollToTurn = (turn) => {
    const box = log();
    box.scrollTop += turn.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
  };

  const send = (question) => {
    // The question and its context, as the server receives them; shows the question while the answer comes.
    notice('');
    let current = conversation();
    if (!current) {
      current = {id: newId(), title: '', updated: Date.now(), count: 0, turns: []};
      state.conversations.unshift(current);
      state.current = current.id;
    }
    const request = newId();
    const turns = turnsOf(current);
    const context = {
      earlier: turns.slice(-CONTEXT_QUESTIONS).map((t) => t.question),
      turns: turns.slice(-CONTEXT_TURNS).map((t) => [t.question, t.text || '']),
      previous_answer: turns.length ? turns[turns.length - 1].short || '' : '',
      scope: [...state.scope.keys()],
      turn: turns.length + 1,
      request,
    };
    state.pending = {request, question, element: null};
    state.recall = null;
    if ((question || '').trim()) {
      const waiting = turnElement('', true);
      const asked = document.createElement('div');
      asked.className = 'rag-q';
      asked.textContent = question;
      const wait = document.createElement('p');
      wait.className = 'rag-wait';
      wait.textContent = 'Looking in the articles…';
      waiting.append(asked, wait);
      if (!turns.length) log().replaceChildren();
      log().append(waiting);
      state.pending.element = waiting;
      scrollToTurn(waiting);
    }
    return [question, JSON.stringify(context)];
  };

  const receive = (raw) => {
    let turn;
    try {
      turn = JSON.parse(raw || 'null');
    } catch (error) {
      return;
    }
    const pending = state.pending;
    if (!turn || !pending || turn.request !== pending.request) return;
    const current = conversation();
    if (turn.error) {
      // The conversation stays as it was; the message sits by the question box, which keeps the question.
      if (pending.element) pending.element.remove();
      if (current && !current.count) showEmpty();
      state.pending = null;
      notice(turn.error);
      return;
    }
    const element = turnElement(turn.html, !turn.final);
    if (pending.element) pending.element.replaceWith(element);
    else log().append(element);
    pending.element = element;
    if (!turn.final) return;
    state.pending = null;
    const kept = {question: turn.question, html: turn.html, text: turn.text, short: turn.short || ''};
    turnsOf(current).push(kept);
    current.count = current.turns.length;
    current.title = current.title || turn.question;
    current.updated = Date.now();
    state.conversations = [current, ...state.conversations.filter((c) => c !== current)];
    for (const old of state.conversations.splice(MAX_CONVERSATIONS)) forget(old);
    keep(current, kept);
    renderHistory();
    document.body.classList.add('rag-asked');
    scrollToTurn(element);
  };

  const setBox = (value) => {
    const box = $('#rag-question textarea');
    if (!box) return;
    box.value = value;
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };

  const api = (path) => {
    const root = (window.gradio_config && window.gradio_config.root) || `${location.origin}${location.pathname}`;
    return `${root.replace(/\/+$/, '')}/gradio_api/${path}`;
  };
  const call = async (question, context) => {
    // gradio's HTTP API: POST the inputs, then read the event stream of results ("generating" while a model
    // writes, "complete" at the end); each result is [the turn as JSON, the question box].
    const started = await fetch(api('call/ask'), {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({data: [question, context]}),
    });
    if (!started.ok) throw new Error(`the server answered ${started.status}`);
    const {event_id: id} = await started.json();
    const stream = await fetch(api(`call/ask/${id}`));
    const reader = stream.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let event = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, '');
        buffer = buffer.slice(end + 1);
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:') && (event === 'generating' || event === 'complete')) {
          const [turn, box] = JSON.parse(line.slice(5));
          receive(turn);
          if (event === 'complete') return box;
        } else if (line.startsWith('data:') && event === 'error') {
          throw new Error('the server could not answer (see its log)');
        }
      }
    }
    throw new Error('the connection closed before the answer came');
  };
  const submit = async () => {
    const box = $('#rag-question textarea');
    if (!box || state.pending) return;
    const [question, context] = send(box.value);
    try {
      setBox(await call(question, context));
    } catch (error) {
      if (state.pending && state.pending.element) state.pending.element.remove();
      state.pending = null;
      notice(`The question could not be sent: ${error.message}. The conversation is unchanged.`);
    }
  };
  const ask = (question) => {
    setBox(question);
    submit();
  };

  const startNew = () => {
    state.current = null;
    state.pending = null;
    render();
    $('#rag-question textarea')?.focus();
  };
  const askNew = () => {
    const current = conversation();
    if (current && current.count >= CONFIRM_AFTER) {
      notice(`Start a new conversation? This one (${current.count} questions) stays under Conversations.`,
             [['Start new', startNew], ['Cancel', () => $('#rag-question textarea')?.focus()]]);
    } else {
      startNew();
    }
  };

  // --- the history panel --------------------------------------------------------------------------------------
  const renderHistory = () => {
    const list = $('#rag-history');
    if (!list) return;
    const items = state.conversations.filter((c) => c.count).map((c) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'rag-history-open';
      button.dataset.id = c.id;
      button.setAttribute('aria-current', String(c.id === state.current));
      button.textContent = c.title || 'Conversation';
      const when = document.createElement('small');
      const count = c.count;
      when.textContent = `${count} question${count === 1 ? '' : 's'} · ${new Date(c.updated).toLocaleString()}`;
      button.append(when);
      item.append(button);
      return item;
    });
    if (!items.length) {
      const none = document.createElement('li');
      none.className = 'rag-note';
      none.textContent = 'No conversation yet.';
      items.push(none);
    }
    list.replaceChildren(...items);
  };

  // --- asking within some articles ----------------------------------------------------------------------------
  const renderScope = () => {
    const box = $('#rag-scope');
    if (!box) return;
    box.replaceChildren();
    if (!state.scope.size) return;
    const titles = [...state.scope.values()];
    const label = document.createElement('span');
    label.textContent = `Asking within ${titles.length === 1 ? '' : `${titles.length} articles: `}` +
      titles.slice(0, 3).join('; ') + (titles.length > 3 ? '…' : '');
    const clear = document.createElement('button');
    clear.type = 'button';
    clear.className = 'rag-button';
    clear.id = 'rag-scope-clear';
    clear.textContent = 'Ask all articles';
    clear.addEventListener('click', () => {
      state.scope.clear();
      syncPicks();
      renderScope();
    });
    box.append(label, ' ', clear);
  };
  const syncPicks = () => {
    for (const box of document.querySelectorAll('.rag-scope-pick')) box.checked = state.scope.has(box.dataset.id);
  };

  // --- the library ----------------------------------------------------------------------------------------------
  const libraryAction = (request) => {
    const box = $('#rag-lib-action textarea');
    if (!box) return;
    box.value = JSON.stringify({...request, offset: state.libOffset, nonce: newId()});
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };

  // --- events -------------------------------------------------------------------------------------------------
  const reveal = (box) => {
    const mark = box.querySelector('mark[id]');
    const text = box.querySelector('.rag-article-text');
    if (mark && text) text.scrollTop = Math.max(0, mark.offsetTop - text.clientHeight / 3);
  };
  // Opening "Full article" scrolls the article box (not the page) to the quote.
  document.addEventListener('toggle', (event) => {
    const box = event.target;
    if (box instanceof HTMLDetailsElement && box.open && box.classList.contains('rag-article')) reveal(box);
  }, true);

  const copy = async (button) => {
    const text = button.dataset.copy || '';
    try {
      await navigator.clipboard.writeText(text);
    } catch (error) {
      const area = document.createElement('textarea');
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand('copy');
      area.remove();
    }
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = 'Copy answer'; }, 2000);
  };

  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const link = target.closest('a.rag-jump, a.rag-ref');
    if (link) {
      // [n] and "Show the quote" move within the page; the quote is brought into view inside its box.
      const goal = document.getElementById((link.getAttribute('href') || '').slice(1));
      if (!goal) return;
      event.preventDefault();
      const box = goal.closest('details');
      if (box && !box.open) box.open = true;
      if (box) reveal(box);
      goal.scrollIntoView({block: 'nearest', behavior: 'smooth'});
      if (goal.tabIndex < 0) goal.tabIndex = -1;
      goal.focus({preventScroll: true});
      return;
    }
    const button = target.closest('button');
    if (!button) return;
    if (button.classList.contains('rag-copy')) copy(button);
    else if (button.classList.contains('rag-suggest')) ask(button.dataset.question || '');
    else if (button.id === 'rag-new') askNew();
    else if (button.classList.contains('rag-history-open')) {
      state.current = button.dataset.id;
      state.pending = null;
      notice('');
      render();
    } else if (button.classList.contains('rag-lib-open')) {
      libraryAction({op: 'open', id: button.dataset.id});
    } else if (button.classList.contains('rag-lib-page')) {
      state.libOffset = Number(button.dataset.offset) || 0;
      libraryAction({op: 'page'});
    } else if (button.classList.contains('rag-lib-remove')) {
      // Two steps: the first click arms the button, the second removes.
      if (!button.classList.contains('rag-armed')) {
        button.classList.add('rag-armed');
        button.textContent = 'Confirm remove';
      } else {
        button.disabled = true;
        libraryAction({op: 'remove', id: button.dataset.id});
      }
    } else if (button.classList.contains('rag-reader-close')) {
      $('#rag-reader')?.classList.add('rag-hidden');
    }
  });

  document.addEventListener('change', (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.classList.contains('rag-scope-pick')) return;
    if (box.checked) state.scope.set(box.dataset.id, box.dataset.title || box.dataset.id);
    else state.scope.delete(box.dataset.id);
    renderScope();
  });

  // Enter (not Shift+Enter) and the Ask button send the question through this script, not gradio's events.
  document.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('#rag-question button') : null;
    if (!button) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    submit();
  }, true);
  document.addEventListener('keydown', (event) => {
    const box = event.target;
    if (!(box instanceof HTMLTextAreaElement) || !box.closest('#rag-question')) return;
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      event.stopImmediatePropagation();
      submit();
      return;
    }
    if (event.key !== 'ArrowUp' && event.key !== 'ArrowDown') return;
    // The up arrow brings back earlier questions (in an empty box, or one showing a recalled question).
    const current = conversation();
    const asked = current ? turnsOf(current).map((t) => t.question) : [];
    if (!asked.length || (box.value && (state.recall === null || box.value !== asked[state.recall]))) return;
    let at = state.recall === null ? asked.length : state.recall;
    at = event.key === 'ArrowUp' ? Math.max(0, at - 1) : at + 1;
    event.preventDefault();
    state.recall = at < asked.length ? at : null;
    box.value = state.recall === null ? '' : asked[state.recall];
    box.dispatchEvent(new Event('input', {bubbles: true}));
  });

  // The library list and the reader are re-rendered by the server: keep the ticks, show the reader when it changes.
  const watch = (selector, changed) => {
    const box = $(selector);
    if (box) new MutationObserver(changed).observe(box, {childList: true, subtree: true});
  };

  const start = () => {
    if (!log()) {
      setTimeout(start, 50);
      return;
    }
    state.conversations = read();
    state.current = state.conversations[0]?.id || null;
    render();
    watch('#rag-library', syncPicks);
    watch('#rag-reader', () => {
      const reader = $('#rag-reader');
      if (!reader || !reader.querySelector('.rag-reader')) return;
      if (reader.classList.contains('rag-hidden')) reader.classList.remove('rag-hidden');
    });
  };
  window.ragApp = {ask};
  start();
}
