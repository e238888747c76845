/* genet-testbed browser player: dash.js 5 deciding through the server's ABR endpoint (Pensieve's protocol),
 * or one of dash.js's own ABR strategies as a baseline, posting its measurements back to the server.
 *
 * Query parameters (player/browser_routes.py builds the URL):
 *   session   session id (ABR endpoint state and the measurement log)
 *   abr       "server" (our rule asks POST ../abr?session=...) or dashjs:bola | dashjs:throughput |
 *             dashjs:dynamic | dashjs:l2a | dashjs:lolp (dash.js decides)
 *   mpd       manifest URL (default ../manifest.mpd)
 *   first_quality  quality index of the first chunk (default 1, the Pensieve convention)
 *   buffer_s  buffer target, s (default 60, Pensieve's and the simulator's cap)
 *
 * Every measurement is an event {seq, type, t_ms (epoch ms), ...} kept in window.genet.events and posted in
 * order, in batches, one POST in flight at a time, to ./report?session=... (player/browser_log.py turns
 * them into the per-chunk log). Event types: config, stream, segment, abandoned, decision, abr_error,
 * quality_requested, quality_rendered, stall_start, stall_end, playing, ended, frames, error.
 */
(function () {
  'use strict';
  const params = new URLSearchParams(window.location.search);
  const cfg = {
    session: params.get('session') || ('page-' + Date.now()),
    abr: params.get('abr') || 'server',
    mpd: params.get('mpd') || '../manifest.mpd',
    abrUrl: params.get('abr_url') || '../abr',
    reportUrl: params.get('report_url') || 'report',
    firstQuality: parseInt(params.get('first_quality') || '1', 10),
    bufferS: parseFloat(params.get('buffer_s') || '60'),
    initialKbps: parseFloat(params.get('initial_kbps') || 'NaN'),   // bitrate of first_quality
  };
  const nowMs = () => performance.timeOrigin + performance.now();
  const G = window.genet = {
    cfg, events: [], seq: 0, started: false, ended: false, failed: null,
    pending: [], inflight: false, postedEvents: 0, postErrors: 0,
    ladder: [], repIndex: {}, completed: -1, lastSegment: null,
    stallStartMs: null, rebufferMs: 0, decisions: {}, bufferingCompleted: false,
  };
  const statusEl = document.getElementById('status');

  function record(type, fields) {
    const ev = Object.assign({seq: G.seq++, type: type, t_ms: nowMs()}, fields || {});
    G.events.push(ev);
    G.pending.push(ev);
    if (type !== 'segment' && type !== 'decision') flush();
    return ev;
  }
  // at most this many events per POST (a few hundred bytes each: well under the server's 256 KiB body limit,
  // player/request_limits.py)
  const MAX_BATCH_EVENTS = 200;
  function flush() {
    if (G.inflight || G.pending.length === 0) return;
    const batch = G.pending.splice(0, Math.min(G.pending.length, MAX_BATCH_EVENTS));
    G.inflight = true;
    fetch(cfg.reportUrl + '?session=' + encodeURIComponent(cfg.session), {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(batch), keepalive: true,
    }).then(r => {
      if (r.ok) { G.postedEvents += batch.length; }
      else if (r.status >= 400 && r.status < 500) {  // refused for good (a limit, a malformed event): not resent
        G.postErrors += 1; G.refusedEvents = (G.refusedEvents || 0) + batch.length;
      }
      else { G.postErrors += 1; G.pending.unshift(...batch); }
    }).catch(() => { G.postErrors += 1; G.pending.unshift(...batch); })
      .finally(() => { G.inflight = false; });
  }
  setInterval(flush, 250);
  G.flushed = function () { flush(); return !G.inflight && G.pending.length === 0; };

  function fail(kind, message) {
    if (!G.failed) G.failed = kind + ': ' + message;
    record('error', {kind: kind, message: String(message)});
    statusEl.textContent = 'FAILED ' + G.failed;
  }
  window.addEventListener('error', e => fail('page_error', (e.message || 'error') + ' at ' + (e.filename || '?') + ':' + (e.lineno || 0)));
  window.addEventListener('unhandledrejection', e => fail('page_error', 'unhandled rejection: ' + (e.reason && e.reason.message || e.reason)));

  if (typeof dashjs === 'undefined') {
    fail('page_error', 'dash.js did not load (is player/assets/vendor installed? run scripts/provision.sh)');
    return;
  }

  const video = document.getElementById('video');
  if (params.get('muted') === '0') { video.muted = false; video.removeAttribute('muted'); }
  const player = dashjs.MediaPlayer().create();
  const E = dashjs.MediaPlayer.events;

  function indexLadder() {      // quality index by bitrate (0 = lowest), as the server's ladder
    const reps = player.getRepresentationsByType('video').slice().sort((a, b) => a.bandwidth - b.bandwidth);
    reps.forEach((r, i) => { G.repIndex[r.id] = i; });
    return reps;
  }
  function qualityOf(rep) {
    if (!rep) return -1;
    let q = G.repIndex[rep.id];
    if (q === undefined) {       // a segment can complete before STREAM_INITIALIZED (fast first chunk)
      try { indexLadder(); } catch (err) { /* no stream yet */ }
      q = G.repIndex[rep.id];
    }
    return q === undefined ? -1 : q;
  }
  function bufferLevelS() {
    const v = player.getDashMetrics().getCurrentBufferLevel('video');
    return (typeof v === 'number' && isFinite(v)) ? v : 0;
  }
  function elementAheadS() {   // seconds the media element holds ahead of the playhead
    const b = video.buffered, t = video.currentTime;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.1 && t < b.end(i)) return b.end(i) - t;
    return 0;
  }
  function ms(d) { return d ? (d instanceof Date ? d.getTime() : Number(d)) : null; }
  function totalRebufferMs() {
    return G.rebufferMs + (G.stallStartMs !== null ? nowMs() - G.stallStartMs : 0);
  }

  // ---------------------------------------------------------------- our quality rule (abr=server)
  function GenetServerRuleClass() {
    const context = this.context;
    const SwitchRequest = dashjs.FactoryMaker.getClassFactoryByName('SwitchRequest');
    function getSwitchRequest(rulesContext) {
      const sr = SwitchRequest(context).create();
      const mediaInfo = rulesContext.getMediaInfo();
      if (!mediaInfo || mediaInfo.type !== 'video') return sr;
      const reps = rulesContext.getAbrController().getPossibleVoRepresentationsFilteredBySettings(mediaInfo, true);
      const last = G.lastSegment;
      let q;
      if (last === null) {
        q = cfg.firstQuality;                        // no chunk yet: the first quality, as the Python player
      } else if (G.decisions[last.index + 1] !== undefined) {
        q = G.decisions[last.index + 1];             // asked again for the same chunk: no second POST
      } else {
        const body = {
          lastquality: last.quality, buffer: bufferLevelS(), RebufferTime: totalRebufferMs(),
          lastChunkStartTime: last.request_ms, lastChunkFinishTime: last.finish_ms,
          lastChunkSize: last.bytes, lastRequest: last.index, session: cfg.session,
        };
        const t = nowMs();
        let text = null;
        try {
          const xhr = new XMLHttpRequest();
          xhr.open('POST', cfg.abrUrl + '?session=' + encodeURIComponent(cfg.session), false);  // synchronous
          xhr.setRequestHeader('Content-Type', 'application/json');
          xhr.send(JSON.stringify(body));
          if (xhr.status !== 200) throw new Error('HTTP ' + xhr.status + ': ' + xhr.responseText.slice(0, 200));
          text = xhr.responseText.trim();
        } catch (err) {
          fail('abr_error', 'ABR endpoint ' + cfg.abrUrl + ' failed before chunk ' + (last.index + 1) + ': ' + err.message);
          return sr;
        }
        if (text === 'REFRESH') return sr;           // past the last chunk
        q = parseInt(text, 10);
        if (!(q >= 0 && q < reps.length)) {
          fail('abr_error', 'ABR endpoint answered ' + JSON.stringify(text) + ' (expected 0..' + (reps.length - 1) + ')');
          return sr;
        }
        G.decisions[last.index + 1] = q;
        record('decision', {chunk_index: last.index + 1, quality: q, buffer_s: body.buffer,
                            rebuffer_total_ms: body.RebufferTime, post_ms: nowMs() - t});
      }
      q = Math.max(0, Math.min(reps.length - 1, q));
      sr.representation = reps[q];
      sr.priority = SwitchRequest.PRIORITY.STRONG;
      sr.reason = {rule: 'GenetServerRule', quality: q};
      return sr;
    }
    return {getSwitchRequest: getSwitchRequest};
  }
  GenetServerRuleClass.__dashjs_factory_name = 'GenetServerRule';

  // ---------------------------------------------------------------- settings
  const off = {active: false};
  const rules = {throughputRule: off, bolaRule: off, insufficientBufferRule: off, switchHistoryRule: off,
                 droppedFramesRule: off, abandonRequestsRule: off, l2ARule: off, loLPRule: off};
  const baselines = {   // dash.js's defaults with the main rule(s) chosen; companion rules as shipped
    'dashjs:dynamic': {throughputRule: {active: true}, bolaRule: {active: true}},
    'dashjs:bola': {bolaRule: {active: true}},
    'dashjs:throughput': {throughputRule: {active: true}},
    'dashjs:l2a': {l2ARule: {active: true}},
    'dashjs:lolp': {loLPRule: {active: true}},
  };
  if (cfg.abr !== 'server') {
    if (!baselines[cfg.abr]) { fail('config', 'unknown abr ' + JSON.stringify(cfg.abr)); return; }
    Object.assign(rules, baselines[cfg.abr], {insufficientBufferRule: {active: true},
      switchHistoryRule: {active: true}, abandonRequestsRule: {active: true}});
  }
  player.updateSettings({
    debug: {logLevel: dashjs.Debug.LOG_LEVEL_WARNING},
    streaming: {
      // the first chunk at first_quality for every strategy (dash.js decides chunk 0 from initialBitrate)
      abr: Object.assign({rules: rules, autoSwitchBitrate: {video: true}},
                         isFinite(cfg.initialKbps) ? {initialBitrate: {video: cfg.initialKbps}} : {}),
      buffer: {fastSwitchEnabled: false, bufferTimeDefault: cfg.bufferS, bufferTimeAtTopQuality: cfg.bufferS,
               bufferTimeAtTopQualityLongForm: cfg.bufferS, bufferToKeep: cfg.bufferS},
      lastBitrateCachingInfo: {enabled: false},
      lastMediaSettingsCachingInfo: {enabled: false},
    },
  });
  if (cfg.abr === 'server') {
    player.addABRCustomRule('qualitySwitchRules', 'GenetServerRule',
                            dashjs.FactoryMaker.getClassFactory(GenetServerRuleClass));
  }
  record('config', {session: cfg.session, abr: cfg.abr, mpd: cfg.mpd, first_quality: cfg.firstQuality,
                    buffer_s: cfg.bufferS, dashjs_version: player.getVersion(), user_agent: navigator.userAgent,
                    active_rules: Object.keys(rules).filter(k => rules[k].active)});

  // ---------------------------------------------------------------- events
  player.on(E.STREAM_INITIALIZED, () => {
    const reps = indexLadder();
    G.ladder = reps.map(r => ({id: r.id, bitrate_kbps: Math.round(r.bandwidth / 1000), width: r.width, height: r.height}));
    if (G.firstInit) prefetchInits(G.firstInit);
    record('stream', {ladder: G.ladder, duration_s: player.duration()});
  });
  player.on(E.FRAGMENT_LOADING_COMPLETED, e => {
    const r = e.request;
    if (r && r.mediaType === 'video' && r.type === 'InitializationSegment') {   // one per quality switch
      if (!G.firstInit) G.firstInit = {url: r.url, representation: r.representation};
      prefetchInits(G.firstInit);
      record('init_segment', {quality: qualityOf(r.representation), bytes: r.bytesLoaded, request_ms: ms(r.startDate),
                              finish_ms: ms(r.endDate), error: e.error ? String(e.error.message || e.error) : null});
      return;
    }
    if (!r || r.mediaType !== 'video' || r.type !== 'MediaSegment') return;
    if (e.error) { record('segment_error', {chunk_index: r.index, message: String(e.error.message || e.error)}); return; }
    const seg = {chunk_index: r.index, index: r.index, quality: qualityOf(r.representation),
                 representation: r.representation && r.representation.id, bytes: r.bytesLoaded,
                 request_ms: ms(r.startDate), first_byte_ms: ms(r.firstByteDate), finish_ms: ms(r.endDate),
                 buffer_at_request_s: G.bufferAtRequest[r.index], url: r.url};
    G.lastSegment = seg;
    G.completed = Math.max(G.completed, r.index);
    record('segment', Object.assign({}, seg, {buffer_s: bufferLevelS(), rebuffer_total_ms: totalRebufferMs()}));
    statusEl.textContent = 'chunk ' + r.index + ' q' + seg.quality + ' buffer ' + bufferLevelS().toFixed(1) + ' s';
  });
  // dash.js 5.2.1 requests the init segment again on every quality switch (one round trip before the
  // segment; the simulator's player has no init segments). The server lets clients cache init segments
  // (player/server.py INIT_MAX_AGE_S); once the first one has loaded the page fetches the other levels' inits
  // (~1 kB each) into Chromium's HTTP cache, so a switch's init request is answered from the cache.
  function prefetchInits(r) {
    if (G.initsPrefetched || !r.url || !r.representation || G.ladder.length === 0) return;
    const id = r.representation.id, marker = '/' + id + '/';
    if (r.url.indexOf(marker) < 0) return;
    G.initsPrefetched = true;
    G.ladder.forEach(l => {
      if (l.id !== id) fetch(r.url.replace(marker, '/' + l.id + '/')).then(x => x.arrayBuffer()).catch(() => {});
    });
    record('inits_prefetched', {levels: G.ladder.length - 1});
  }
  G.bufferAtRequest = {};
  player.on(E.FRAGMENT_LOADING_STARTED, e => {
    const r = e.request;
    if (r && r.mediaType === 'video' && r.type === 'MediaSegment') G.bufferAtRequest[r.index] = bufferLevelS();
  });
  player.on(E.FRAGMENT_LOADING_ABANDONED, e => {
    const r = e.request;
    if (r && r.mediaType === 'video') record('abandoned', {chunk_index: r.index, quality: qualityOf(r.representation)});
  });
  player.on(E.QUALITY_CHANGE_REQUESTED, e => {
    if (e.mediaType === 'video') record('quality_requested', {quality: qualityOf(e.newRepresentation),
                                                              old_quality: qualityOf(e.oldRepresentation)});
  });
  player.on(E.QUALITY_CHANGE_RENDERED, e => {
    if (e.mediaType === 'video') record('quality_rendered', {quality: qualityOf(e.newRepresentation),
                                                             old_quality: qualityOf(e.oldRepresentation),
                                                             media_time_s: video.currentTime});
  });
  // Rebuffering: dash.js's BUFFER_EMPTY / BUFFER_LOADED (not PLAYBACK_STALLED, the HTML network event).
  player.on(E.BUFFER_EMPTY, e => {
    if (e.mediaType && e.mediaType !== 'video') return;
    if (!G.started || G.ended || G.stallStartMs !== null) return;
    const level = bufferLevelS();
    const ahead = elementAheadS();
    if (ahead > 1.0) {  // start-up flicker: dash.js's level not yet updated while the element holds seconds
      record('buffer_empty_ignored', {media_time_s: video.currentTime, buffer_s: level, element_ahead_s: ahead});
      return;
    }
    G.stallStartMs = nowMs();
    G.stallPlayheadStopped = false;
    record('stall_start', {media_time_s: video.currentTime, after_chunk: G.completed, buffer_s: level});
  });
  player.on(E.BUFFER_LOADED, e => {
    if (e.mediaType && e.mediaType !== 'video') return;
    if (G.stallStartMs === null) return;
    const dur = nowMs() - G.stallStartMs;
    G.rebufferMs += dur;
    G.stallStartMs = null;
    record('stall_end', {duration_ms: dur, media_time_s: video.currentTime, after_chunk: G.completed});
  });
  // Started = the media element's first 'playing' (frames advancing); dash.js's PLAYBACK_STARTED fires
  // already on play(), before any data, so it only marks the request.
  player.on(E.PLAYBACK_STARTED, () => { if (!G.playRequested) { G.playRequested = true; record('play_requested', {}); } });
  video.addEventListener('playing', () => {
    if (G.started) return;
    G.started = true;
    record('playing', {media_time_s: video.currentTime});
  });
  // dash.js declares BUFFER_EMPTY below its stallThreshold (0.3 s) while the element still plays what it
  // holds; the frozen picture starts at the element's 'waiting' (data ran dry): a stall starts there when
  // that comes while it is open (the simulator's stall: from the buffer running dry to the chunk's arrival).
  video.addEventListener('waiting', () => {
    if (!G.started || G.ended) return;
    record('waiting', {media_time_s: video.currentTime});
    if (G.stallStartMs !== null && !G.stallPlayheadStopped) {
      G.stallPlayheadStopped = true;
      const t = nowMs();
      record('stall_playhead_stopped', {moved_ms: t - G.stallStartMs, media_time_s: video.currentTime});
      G.stallStartMs = t;
    }
  });
  function frames(final) {
    const pq = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    record('frames', {final: !!final, dropped_frames: pq ? pq.droppedVideoFrames : null,
                      total_frames: pq ? pq.totalVideoFrames : null, media_time_s: video.currentTime});
  }
  setInterval(() => { if (G.started && !G.ended) frames(false); }, 4000);
  player.on(E.PLAYBACK_ENDED, () => {
    if (G.ended) return;
    if (G.stallStartMs !== null) {   // a stall still open at the end is closed here
      const dur = nowMs() - G.stallStartMs;
      G.rebufferMs += dur; G.stallStartMs = null;
      record('stall_end', {duration_ms: dur, media_time_s: video.currentTime, after_chunk: G.completed});
    }
    frames(true);
    G.ended = true;
    record('ended', {media_time_s: video.currentTime, rebuffer_total_ms: G.rebufferMs});
    statusEl.textContent = 'ended: ' + (G.completed + 1) + ' chunks, stalls ' + (G.rebufferMs / 1000).toFixed(2) + ' s';
  });
  player.on(E.ERROR, e => {
    const err = e.error || {};
    fail('dashjs_error', 'dash.js error ' + (err.code !== undefined ? err.code : '') + ': ' + (err.message || JSON.stringify(err)));
  });
  player.on(E.PLAYBACK_ERROR, e => fail('playback_error', 'video element error: ' + (e.error && e.error.message || e.error)));
  video.addEventListener('error', () => {
    const me = video.error;
    fail('media_error', 'HTMLMediaElement error ' + (me ? me.code + ' ' + me.message : ''));
  });

  // autostart=0: the page loads (dash.js parsed) and waits for window.genet.start() — the driver starts the
  // session at a set time, so page loading does not shift it (trace alignment)
  if (params.get('autostart') === '0') {
    G.start = function () { if (!G.startCalled) { G.startCalled = true; record('start', {}); player.initialize(video, cfg.mpd, true); } };
    statusEl.textContent = 'ready';
  } else {
    player.initialize(video, cfg.mpd, true);
  }
})();
