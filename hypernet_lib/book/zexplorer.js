/* Chapter 2's z explorer: the static MNIST hypernetwork, computed in the reader's browser.
 *
 * Plain JavaScript and <canvas>: no kernel, no network, no framework.  hypernet_lib/book/zexplorer.py
 * inlines this file into a text/html output together with a JSON blob of the trained weights, then
 * calls hnZExplorerMount(root, data) inside its own closure, so several widgets on one page share
 * nothing (every element id is made here, unique per mount).
 *
 * What it computes, in the names of hypernet_lib/nn/generator.py and nn/mnist.py (shapes in PyTorch's order):
 *   kernel      Eq. 2-3: z (N_z) -> K (N_out, N_in, f, f) through W_in (N_in, d, N_z), b_in (N_in, d),
 *               W_out (N_out·f·f, d), b_out (N_out·f·f)                       -- kernelAt()
 *   main net    MNISTHyperNet.forward: x (1, 28, 28) -> conv1 'same' -> ReLU -> 2×2 max-pool (C, 14, 14)
 *               -> conv2 'same' with K -> ReLU -> 2×2 max-pool (C, 7, 7) -> flatten -> FC -> softmax
 *               The drawn digit goes through this literally, with the generated K  -- forwardDirect().
 *   test digits The same net for the 100 embedded digits.  Their conv2 pre-activation is affine in z
 *               (K is affine in z, a convolution is linear in its kernel), so it is precomputed once per
 *               digit as Q_c + Σ_j z_j Q_j (N_z+1 planes of (C, 14, 14)) and each update costs an axpy
 *               instead of a 2.5-million-MAC convolution per digit                -- precomputeDigit().
 *
 * State for tests, on the root element: hnZ, hnKernel (Float32Array, (N_out, N_in, f, f) flat),
 * hnProbs (drawn digit, or null), hnPrediction, hnTestProbs (N×10), hnPredictions (N), hnAccuracy,
 * hnDrawnInput (the normalised 28×28 input of the drawn digit, or null), hnLastUpdateMs,
 * hnSetZ(z), hnForward(x784) (the literal forward pass at the current z), hnReady (a Promise),
 * hnAnimating, hnAnimationFrames (frames drawn by the last direction button: 0 when it jumped).
 */
function hnZExplorerMount(root, data) {
  "use strict";
  if (root.hnMounted) return;
  root.hnMounted = true;

  // ------------------------------------------------------------------------------------------
  // Sizes and weights
  // ------------------------------------------------------------------------------------------
  var C = data.channels, F = data.f, FF = F * F, P = (F - 1) >> 1, NZ = data.n_z, D = data.d;
  var NCLS = data.n_classes, S1 = 28, S2 = 14, S3 = 7, A2 = S2 * S2, A3 = S3 * S3;
  var NFEAT = C * A3;
  window.__hnZxCount = (window.__hnZxCount || 0) + 1;
  var uid = "hnzx" + window.__hnZxCount + "-" + Math.random().toString(36).slice(2, 8);

  function bytes(b64) {
    var s = atob(b64), u = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
    return u;
  }
  function f32(name, n) {
    var u = bytes(data.arrays[name]);
    if (u.length !== 4 * n) throw new Error("zexplorer: " + name + " has " + (u.length / 4) + " values, expected " + n);
    return new Float32Array(u.buffer, 0, n);
  }
  var conv1W = f32("conv1_weight", C * FF);      // (C, 1, f, f)
  var conv1B = f32("conv1_bias", C);             // (C,)
  var wIn = f32("w_in", C * D * NZ);             // W_i for all i: (N_in, d, N_z)
  var bIn = f32("b_in", C * D);                  // B_i for all i: (N_in, d)
  var wOut = f32("w_out", C * FF * D);           // W_out: (N_out·f·f, d)
  var bOut = f32("b_out", C * FF);               // B_out: (N_out·f·f,)
  var conv2B = f32("conv2_bias", C);             // (C,)
  var fcW = f32("fc_weight", NCLS * NFEAT);      // (10, C·7·7)
  var fcB = f32("fc_bias", NCLS);                // (10,)
  function unzeroRle(u, size) {                  // "0, n" stands for n zeros; any other byte is itself
    var out = new Uint8Array(size), j = 0;
    for (var i = 0; i < u.length; i++) {
      if (u[i] === 0) j += u[++i];
      else out[j++] = u[i];
    }
    if (j !== size) throw new Error("zexplorer: the digits hold " + j + " pixels, expected " + size);
    return out;
  }
  var labels = data.labels, N = labels.length;
  var digits = unzeroRle(bytes(data.digits), N * S1 * S1);   // (N, 28, 28) uint8: raw pixel values 0..255
  var MEAN = data.mean, STD = data.std;          // input normalisation: x = (pixel/255 - mean) / std
  var zStar = data.z_star.slice();
  var z = zStar.slice();
  var VMAX = data.vmax;

  // ------------------------------------------------------------------------------------------
  // Eq. 2-3 in JavaScript
  // ------------------------------------------------------------------------------------------
  var kernel = new Float32Array(C * C * FF);    // K, (N_out, N_in, f, f)
  var aI = new Float64Array(D);
  function kernelAt(zv, out) {
    for (var i = 0; i < C; i++) {                // one input slice i at a time
      for (var k = 0; k < D; k++) {
        var s = bIn[i * D + k];
        for (var j = 0; j < NZ; j++) s += wIn[(i * D + k) * NZ + j] * zv[j];
        aI[k] = s;                               // a_i = W_i z + B_i            (Eq. 2, first line)
      }
      for (var o = 0; o < C * FF; o++) {
        var t = bOut[o];
        for (var kk = 0; kk < D; kk++) t += wOut[o * D + kk] * aI[kk];
        var oc = (o / FF) | 0, p = o - oc * FF;  // K_i = <W_out, a_i> + B_out   (Eq. 2, second line)
        out[(oc * C + i) * FF + p] = t;          // K = [K_1 ... K_N_in] as (N_out, N_in, f, f)  (Eq. 3)
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // The main net's layers (PyTorch semantics: cross-correlation, zero 'same' padding)
  // ------------------------------------------------------------------------------------------
  function fillBias(out, bias, c, area) {
    for (var o = 0; o < c; o++) for (var p = 0; p < area; p++) out[o * area + p] = bias[o];
  }
  // out (cout, s, s) += conv2d(x (cin, s, s), w (cout, cin, f, f), padding='same')
  function convSame(x, cin, s, w, cout, out) {
    var ss = s * s;
    for (var o = 0; o < cout; o++) {
      var ob = o * ss;
      for (var i = 0; i < cin; i++) {
        var xb = i * ss, wb = (o * cin + i) * FF;
        for (var ky = 0; ky < F; ky++) {
          var dy = ky - P, y0 = dy < 0 ? -dy : 0, y1 = dy > 0 ? s - dy : s;
          for (var kx = 0; kx < F; kx++) {
            var wv = w[wb + ky * F + kx];
            if (wv === 0) continue;
            var dx = kx - P, x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? s - dx : s;
            for (var y = y0; y < y1; y++) {
              var orow = ob + y * s, irow = xb + (y + dy) * s + dx;
              for (var xx = x0; xx < x1; xx++) out[orow + xx] += wv * x[irow + xx];
            }
          }
        }
      }
    }
  }
  // out (c, s/2, s/2) = max_pool2d(relu(x (c, s, s)), 2)
  function reluPool(x, c, s, out) {
    var h = s >> 1, ss = s * s, hh = h * h;
    for (var ch = 0; ch < c; ch++) {
      for (var y = 0; y < h; y++) {
        for (var xx = 0; xx < h; xx++) {
          var b = ch * ss + 2 * y * s + 2 * xx;
          var m = x[b], v = x[b + 1];
          if (v > m) m = v;
          v = x[b + s]; if (v > m) m = v;
          v = x[b + s + 1]; if (v > m) m = v;
          out[ch * hh + y * h + xx] = m > 0 ? m : 0;
        }
      }
    }
  }
  var logits = new Float64Array(NCLS);
  function fcSoftmax(feat, probs) {           // logits = W feat + b (feat flattened as (C, 7, 7)); softmax
    var mx = -Infinity;
    for (var c = 0; c < NCLS; c++) {
      var s = fcB[c], wb = c * NFEAT;
      for (var k = 0; k < NFEAT; k++) s += fcW[wb + k] * feat[k];
      logits[c] = s;
      if (s > mx) mx = s;
    }
    var tot = 0;
    for (c = 0; c < NCLS; c++) { probs[c] = Math.exp(logits[c] - mx); tot += probs[c]; }
    var best = 0;
    for (c = 0; c < NCLS; c++) { probs[c] /= tot; if (probs[c] > probs[best]) best = c; }
    return best;
  }

  var buf1 = new Float64Array(C * S1 * S1), buf2 = new Float64Array(C * A2), feat2 = new Float64Array(NFEAT);
  // conv1 -> ReLU -> pool: x (1, 28, 28) -> out (C, 14, 14); independent of z
  function features1(x, out) {
    fillBias(buf1, conv1B, C, S1 * S1);
    convSame(x, 1, S1, conv1W, C, buf1);
    reluPool(buf1, C, S1, out);
    return out;
  }
  // the rest of MNISTHyperNet.forward, literally: h (C, 14, 14) -> conv2 with K -> ReLU -> pool -> FC -> softmax
  function forwardFromFeatures(h, K, probs) {
    fillBias(buf2, conv2B, C, A2);
    convSame(h, C, S2, K, C, buf2);
    reluPool(buf2, C, S2, feat2);
    return fcSoftmax(feat2, probs);
  }
  function forwardDirect(x, K, probs) {
    return forwardFromFeatures(features1(x, new Float64Array(C * A2)), K, probs);
  }

  // ------------------------------------------------------------------------------------------
  // The 100 test digits: conv2's pre-activation as an affine function of z
  //   pre(z)[o] = b2[o] + Σ_i conv(h_i, K[o, i]),   K[o, i] = Σ_k V_k[o] a_i[k] + V_B[o]
  //             = b2[o] + Σ_k conv(Σ_i a_i[k] h_i, V_k[o]) + conv(Σ_i h_i, V_B[o])
  //   with V_k = column k of W_out as C filters (C, 1, f, f), V_B = B_out as C filters, and
  //   Σ_i a_i[k] h_i = Σ_j z_j Y_kj + Y_kB,  Y_kj = Σ_i W_i[k, j] h_i,  Y_kB = Σ_i B_i[k] h_i.
  //   So pre(z) = Q_c + Σ_j z_j Q_j,  Q_j = Σ_k conv(Y_kj, V_k),  Q_c = b2 + Σ_k conv(Y_kB, V_k) + conv(Σ_i h_i, V_B).
  // ------------------------------------------------------------------------------------------
  var NQ = NZ + 1, QS = C * A2;
  var Q = new Float32Array(N * NQ * QS);        // per digit: N_z planes Q_j, then Q_c; each (C, 14, 14)
  var V = [];
  for (var k0 = 0; k0 < D; k0++) {
    var vk = new Float32Array(C * FF);
    for (var o0 = 0; o0 < C * FF; o0++) vk[o0] = wOut[o0 * D + k0];
    V.push(vk);
  }
  var qAcc = new Float64Array(NQ * QS), yPlane = new Float64Array(A2), hDigit = new Float64Array(C * A2);
  var xDigit = new Float64Array(S1 * S1);
  function digitInput(n, out) {
    for (var p = 0; p < S1 * S1; p++) out[p] = (digits[n * S1 * S1 + p] / 255 - MEAN) / STD;
    return out;
  }
  function precomputeDigit(n) {
    var h = features1(digitInput(n, xDigit), hDigit);
    qAcc.fill(0);
    var qc = qAcc.subarray(NZ * QS, NQ * QS);
    fillBias(qc, conv2B, C, A2);
    for (var k = 0; k < D; k++) {
      for (var j = 0; j <= NZ; j++) {             // j = N_z stands for the bias B_i
        yPlane.fill(0);
        for (var i = 0; i < C; i++) {
          var c = j < NZ ? wIn[(i * D + k) * NZ + j] : bIn[i * D + k];
          for (var p = 0; p < A2; p++) yPlane[p] += c * h[i * A2 + p];
        }
        convSame(yPlane, 1, S2, V[k], C, qAcc.subarray(j * QS, (j + 1) * QS));
      }
    }
    yPlane.fill(0);
    for (var i2 = 0; i2 < C; i2++) for (var p2 = 0; p2 < A2; p2++) yPlane[p2] += h[i2 * A2 + p2];
    convSame(yPlane, 1, S2, bOut, C, qc);
    Q.set(qAcc, n * NQ * QS);
  }
  var ready = false;
  var testProbs = new Float32Array(N * NCLS), predictions = new Int32Array(N), pTmp = new Float64Array(NCLS);
  var pre = new Float64Array(QS);
  function classifyTestDigits(zv) {
    var correct = 0;
    for (var n = 0; n < N; n++) {
      var base = n * NQ * QS, cb = base + NZ * QS;
      for (var p = 0; p < QS; p++) pre[p] = Q[cb + p];
      for (var j = 0; j < NZ; j++) {
        var zj = zv[j], jb = base + j * QS;
        for (var p2 = 0; p2 < QS; p2++) pre[p2] += zj * Q[jb + p2];
      }
      reluPool(pre, C, S2, feat2);
      var best = fcSoftmax(feat2, pTmp);
      for (var c = 0; c < NCLS; c++) testProbs[n * NCLS + c] = pTmp[c];
      predictions[n] = best;
      if (best === labels[n]) correct++;
    }
    return correct / N;
  }

  // ------------------------------------------------------------------------------------------
  // The page
  // ------------------------------------------------------------------------------------------
  function el(tag, attrs, parent, text) {
    var e = document.createElement(tag);
    for (var key in attrs) if (Object.prototype.hasOwnProperty.call(attrs, key)) e.setAttribute(key, attrs[key]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  var fmt = function (v, n) { return (v >= 0 ? "+" : "\u2212") + Math.abs(v).toFixed(n === undefined ? 2 : n); };
  var body = el("div", { "class": "hn-zx-body" }, root);
  el("p", { "class": "hn-zx-title" }, body, data.title);

  // the filter grid
  var GAP = 3, CELL = Math.max(2, Math.floor((610 - (C - 1) * GAP) / (C * F))), TILE = CELL * F;
  var GW = C * TILE + (C - 1) * GAP;
  var gridBox = el("figure", { "class": "hn-zx-grid" }, body);
  el("div", { "class": "hn-zx-axis" }, gridBox, "input channel i \u2192  (one column per i; one row per output channel o)");
  var gridCanvas = el("canvas", { width: GW, height: GW, role: "img", id: uid + "-kernel",
    "aria-label": "conv2's kernel: " + C + "\u00d7" + C + " filters of " + F + "\u00d7" + F +
      " weights generated from z, rows are output channels, columns input channels; blue negative, red positive" }, gridBox);
  var gctx = gridCanvas.getContext("2d");
  var gImage = gctx.createImageData(GW, GW), gPix = new Uint32Array(gImage.data.buffer);
  var cbar = el("figcaption", { "class": "hn-zx-cbar" }, gridBox);
  var cbarCanvas = el("canvas", { width: 256, height: 1, "aria-hidden": "true" });
  el("span", {}, cbar, "\u2212" + VMAX.toPrecision(2));
  cbar.appendChild(cbarCanvas);
  el("span", {}, cbar, "+" + VMAX.toPrecision(2));
  var kernelInfo = el("span", { "class": "hn-zx-kinfo" }, cbar);

  // RdBu_r, matplotlib's colour map of the book's filter grids (ColorBrewer RdBu, reversed: blue < 0 < red)
  var RDBU = [[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
              [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]];
  var LUT = new Uint32Array(256), lutRgb = [];
  for (var t = 0; t < 256; t++) {
    var pos = t / 255 * 10, lo = Math.min(9, Math.floor(pos)), fr = pos - lo, rgb = [];
    for (var ch = 0; ch < 3; ch++) rgb.push(Math.round(RDBU[lo][ch] + fr * (RDBU[lo + 1][ch] - RDBU[lo][ch])));
    LUT[t] = (255 << 24 | rgb[2] << 16 | rgb[1] << 8 | rgb[0]) >>> 0;
    lutRgb.push(rgb);
  }
  (function () {
    var cctx = cbarCanvas.getContext("2d"), im = cctx.createImageData(256, 1);
    new Uint32Array(im.data.buffer).set(LUT);
    cctx.putImageData(im, 0, 0);
  })();
  var BG = 0xffffffff >>> 0;
  gPix.fill(BG);
  function drawKernel() {
    for (var o = 0; o < C; o++) {
      for (var i = 0; i < C; i++) {
        var x0 = i * (TILE + GAP), y0 = o * (TILE + GAP), kb = (o * C + i) * FF;
        for (var ky = 0; ky < F; ky++) {
          for (var kx = 0; kx < F; kx++) {
            var v = kernel[kb + ky * F + kx] / VMAX;          // fixed colour scale [-vmax, vmax]
            var idx = Math.round((v + 1) * 127.5);
            var col = LUT[idx < 0 ? 0 : idx > 255 ? 255 : idx];
            var px = x0 + kx * CELL, py = y0 + ky * CELL;
            for (var yy = 0; yy < CELL; yy++) {
              var row = (py + yy) * GW + px;
              for (var xx = 0; xx < CELL; xx++) gPix[row + xx] = col;
            }
          }
        }
      }
    }
    gctx.putImageData(gImage, 0, 0);
  }

  // the controls
  var panel = el("div", { "class": "hn-zx-panel" }, body);
  var zBox = el("fieldset", { "class": "hn-zx-z" }, panel);
  el("legend", {}, zBox, "The layer embedding z (N_z = " + NZ + ")");
  var lim = data.z_range, step = lim / 200;
  var sliders = [], outputs = [];
  for (var j0 = 0; j0 < NZ; j0++) {
    var row = el("div", { "class": "hn-zx-row" }, zBox);
    var sid = uid + "-z" + j0;
    el("label", { "for": sid }, row, "z[" + j0 + "]");
    var s = el("input", { type: "range", id: sid, min: -lim, max: lim, step: step, value: zStar[j0] }, row);
    s.dataset.j = j0;
    outputs.push(el("output", { "for": sid, id: sid + "-value" }, row, fmt(zStar[j0])));
    sliders.push(s);
  }
  var zInfo = el("p", { "class": "hn-zx-zinfo", id: uid + "-zinfo" }, zBox);
  var pathBox = el("fieldset", { "class": "hn-zx-paths" }, panel);
  el("legend", {}, pathBox, "Directions from z*");
  var buttons = el("div", { "class": "hn-zx-buttons" }, pathBox);
  var resetBtn = el("button", { type: "button", id: uid + "-reset" }, buttons, "Reset to z*");
  var paths = data.directions || [], pathBtns = [];
  paths.forEach(function (d, k) {
    var b = el("button", { type: "button", id: uid + "-path" + k, "aria-describedby": uid + "-pathhelp" }, buttons, d.label);
    b.dataset.k = k;
    pathBtns.push(b);
  });
  var tRow = el("div", { "class": "hn-zx-row" }, pathBox);
  var tid = uid + "-t";
  var tLabel = el("label", { "for": tid }, tRow, "t along " + (paths.length ? paths[0].label : "(no path)"));
  var tSlider = el("input", { type: "range", id: tid, min: 0, max: 1, step: 0.01, value: 0 }, tRow);
  if (!paths.length) tSlider.disabled = true;
  var tOut = el("output", { "for": tid }, tRow, "0.00");
  el("p", { "class": "hn-zx-help", id: uid + "-pathhelp" }, pathBox,
    "A direction button walks z along the straight line z = (1\u2212t)\u00b7z* + t\u00b7end, from t = 0 to 1 in " +
    (data.animate_ms / 1000).toFixed(1) + " s, and stops at the end (it jumps there if your system asks for " +
    "reduced motion). The t slider moves along the last chosen line; the arrow keys move any slider.");

  // drawing and predictions
  var lower = el("div", { "class": "hn-zx-lower" }, body);
  var drawBox = el("div", { "class": "hn-zx-draw" }, lower);
  var padId = uid + "-pad";
  el("p", { "class": "hn-zx-caption", id: padId + "-caption" }, drawBox, "Draw a digit here (mouse, finger or pen)");
  var PAD = 280;
  var pad = el("canvas", { width: PAD, height: PAD, id: padId, "class": "hn-zx-pad", role: "img",
    "aria-label": "drawing area for a digit; with the keyboard, use \u201cCopy a test digit\u201d instead" }, drawBox);
  var pctx = pad.getContext("2d");
  var drawBtns = el("div", { "class": "hn-zx-buttons" }, drawBox);
  var clearBtn = el("button", { type: "button", id: uid + "-clear" }, drawBtns, "Clear");
  var copyBtn = el("button", { type: "button", id: uid + "-copy" }, drawBtns, "Copy a test digit");
  var seeRow = el("div", { "class": "hn-zx-sees" }, drawBox);
  var seen = el("canvas", { width: S1, height: S1, role: "img", id: uid + "-seen",
    "aria-label": "the drawn digit as the net sees it: 28\u00d728, centred by mass, scaled to a 20\u00d720 box" }, seeRow);
  el("span", {}, seeRow, "what the net sees (28\u00d728, centred by mass, in a 20\u00d720 box, like MNIST)");
  var sctx = seen.getContext("2d");

  var predBox = el("div", { "class": "hn-zx-pred" }, lower);
  var predText = el("p", { "class": "hn-zx-predtext", id: uid + "-pred", "aria-live": "polite" }, predBox, "Draw a digit.");
  var bars = [], barVals = [];
  var barList = el("div", { "class": "hn-zx-bars", role: "list", "aria-label": "class probabilities of the drawn digit" }, predBox);
  for (var c0 = 0; c0 < NCLS; c0++) {
    var br = el("div", { "class": "hn-zx-bar", role: "listitem" }, barList);
    el("span", { "class": "hn-zx-barlabel" }, br, String(c0));
    var track = el("span", { "class": "hn-zx-track" }, br);
    bars.push(el("span", { "class": "hn-zx-fill" }, track));
    barVals.push(el("span", { "class": "hn-zx-barval" }, br, "\u2013"));
  }

  var testBox = el("figure", { "class": "hn-zx-tests" }, body);
  var TGAP = 4, TT = S1 + TGAP, TCOLS = 10, TROWS = Math.ceil(N / TCOLS);
  var testCanvas = el("canvas", { width: TCOLS * TT + TGAP, height: TROWS * TT + TGAP, role: "img", id: uid + "-tests",
    "aria-label": "the " + N + " embedded test digits" }, testBox);
  var tctx = testCanvas.getContext("2d");
  var tImage = tctx.createImageData(testCanvas.width, testCanvas.height), tPix = new Uint32Array(tImage.data.buffer);
  var accText = el("figcaption", { id: uid + "-acc", "aria-live": "polite" }, testBox, "Preparing the test digits\u2026");

  function drawTests() {
    tPix.fill(BG);
    var W = testCanvas.width, RED = (255 << 24 | 40 << 16 | 24 << 8 | 200) >>> 0;
    for (var n = 0; n < N; n++) {
      var x0 = TGAP + (n % TCOLS) * TT, y0 = TGAP + Math.floor(n / TCOLS) * TT;
      if (ready && predictions[n] !== labels[n]) {             // a red frame: misclassified at this z
        for (var yy = -2; yy < S1 + 2; yy++) for (var xx = -2; xx < S1 + 2; xx++) {
          if (yy >= 0 && yy < S1 && xx >= 0 && xx < S1) continue;
          tPix[(y0 + yy) * W + x0 + xx] = RED;
        }
      }
      for (var y = 0; y < S1; y++) for (var x = 0; x < S1; x++) {
        var g = 255 - digits[n * S1 * S1 + y * S1 + x];
        tPix[(y0 + y) * W + x0 + x] = (255 << 24 | g << 16 | g << 8 | g) >>> 0;
      }
    }
    tctx.putImageData(tImage, 0, 0);
  }

  // ------------------------------------------------------------------------------------------
  // The drawn digit: MNIST's preprocessing
  //   ink -> bounding box -> scaled (area average, aspect kept) so its longer side is 20 px
  //   -> placed in 28×28 with its centre of mass at the centre -> max 1 -> (x - mean) / std
  // ------------------------------------------------------------------------------------------
  function clearPad() {
    pctx.fillStyle = "#fff";
    pctx.fillRect(0, 0, PAD, PAD);
  }
  clearPad();
  function areaWeights(start, len, outLen) {   // 1-D box filter: output k averages [start + k·s, start + (k+1)·s)
    var s = len / outLen, w = [];
    for (var k = 0; k < outLen; k++) {
      var a = start + k * s, b = a + s, list = [];
      for (var i = Math.floor(a); i < Math.ceil(b); i++) {
        var cover = Math.min(b, i + 1) - Math.max(a, i);
        if (cover > 1e-9) list.push([i, cover / s]);
      }
      w.push(list);
    }
    return w;
  }
  function preprocess() {                      // -> Float64Array(784) in [0, 1], or null when nothing is drawn
    var img = pctx.getImageData(0, 0, PAD, PAD).data, ink = new Float64Array(PAD * PAD);
    var minX = PAD, minY = PAD, maxX = -1, maxY = -1;
    for (var y = 0; y < PAD; y++) for (var x = 0; x < PAD; x++) {
      var v = (255 - img[(y * PAD + x) * 4]) / 255;
      if (v > 0.02) {
        ink[y * PAD + x] = v;
        if (x < minX) minX = x; if (x > maxX) maxX = x;
        if (y < minY) minY = y; if (y > maxY) maxY = y;
      }
    }
    if (maxX < 0) return null;
    var w = maxX - minX + 1, h = maxY - minY + 1, scale = 20 / Math.max(w, h);
    var tw = Math.max(1, Math.round(w * scale)), th = Math.max(1, Math.round(h * scale));
    var wx = areaWeights(minX, w, tw), wy = areaWeights(minY, h, th);
    var rowsX = new Float64Array(PAD * tw);    // horizontal pass
    for (var yy = minY; yy <= maxY; yy++) for (var k = 0; k < tw; k++) {
      var sum = 0, l = wx[k];
      for (var q = 0; q < l.length; q++) sum += ink[yy * PAD + l[q][0]] * l[q][1];
      rowsX[yy * tw + k] = sum;
    }
    var small = new Float64Array(th * tw), mass = 0, mx = 0, my = 0, peak = 0;
    for (var r = 0; r < th; r++) for (var k2 = 0; k2 < tw; k2++) {
      var acc = 0, lw = wy[r];
      for (var q2 = 0; q2 < lw.length; q2++) acc += rowsX[lw[q2][0] * tw + k2] * lw[q2][1];
      small[r * tw + k2] = acc;
      mass += acc; mx += acc * k2; my += acc * r;
      if (acc > peak) peak = acc;
    }
    var ox = Math.round((S1 - 1) / 2 - mx / mass), oy = Math.round((S1 - 1) / 2 - my / mass);
    var out = new Float64Array(S1 * S1);
    for (var r2 = 0; r2 < th; r2++) for (var k3 = 0; k3 < tw; k3++) {
      var X = k3 + ox, Y = r2 + oy;
      if (X >= 0 && X < S1 && Y >= 0 && Y < S1) out[Y * S1 + X] = small[r2 * tw + k3] / peak;
    }
    return out;
  }
  var drawnPixels = null, drawnInput = null, drawnFeat = null, drawnProbs = new Float64Array(NCLS);
  function refreshDrawn() {
    drawnPixels = preprocess();
    var im = sctx.createImageData(S1, S1);
    for (var p = 0; p < S1 * S1; p++) {
      var g = drawnPixels ? Math.round(255 * (1 - drawnPixels[p])) : 255;
      im.data[4 * p] = im.data[4 * p + 1] = im.data[4 * p + 2] = g;
      im.data[4 * p + 3] = 255;
    }
    sctx.putImageData(im, 0, 0);
    if (drawnPixels) {
      drawnInput = new Float32Array(S1 * S1);
      for (var q = 0; q < S1 * S1; q++) drawnInput[q] = (drawnPixels[q] - MEAN) / STD;
      drawnFeat = features1(drawnInput, new Float64Array(C * A2));    // conv1 does not depend on z: once per drawing
    } else {
      drawnInput = drawnFeat = null;
    }
    root.hnDrawnInput = drawnInput;
    classifyDrawn();                           // z has not moved: the kernel and the test digits stand
  }
  var drawing = false, last = null, pending = false;
  function padPos(e) {
    var rect = pad.getBoundingClientRect();
    return [(e.clientX - rect.left) * PAD / rect.width, (e.clientY - rect.top) * PAD / rect.height];
  }
  function stroke(a, b) {
    pctx.strokeStyle = "#000";
    pctx.lineWidth = PAD * 0.075;
    pctx.lineCap = pctx.lineJoin = "round";
    pctx.beginPath();
    pctx.moveTo(a[0], a[1]);
    pctx.lineTo(b[0] + (a[0] === b[0] && a[1] === b[1] ? 0.01 : 0), b[1]);
    pctx.stroke();
  }
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; refreshDrawn(); });
  }
  pad.addEventListener("pointerdown", function (e) {
    e.preventDefault();
    drawing = true;
    if (pad.setPointerCapture) try { pad.setPointerCapture(e.pointerId); } catch (err) { /* synthetic events */ }
    last = padPos(e);
    stroke(last, last);
    schedule();
  });
  pad.addEventListener("pointermove", function (e) {
    if (!drawing) return;
    e.preventDefault();
    var p = padPos(e);
    stroke(last, p);
    last = p;
    schedule();
  });
  function endStroke() {
    if (!drawing) return;
    drawing = false;
    refreshDrawn();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("pointerleave", function (e) { if (e.pointerType === "mouse") endStroke(); });
  clearBtn.addEventListener("click", function () { clearPad(); refreshDrawn(); });
  var nextCopy = 0;
  function copyDigit(n) {                      // a test digit, 10× (nearest neighbour), into the drawing area
    var im = pctx.createImageData(PAD, PAD), sc = PAD / S1;
    for (var y = 0; y < PAD; y++) for (var x = 0; x < PAD; x++) {
      var g = 255 - digits[n * S1 * S1 + Math.floor(y / sc) * S1 + Math.floor(x / sc)], q = 4 * (y * PAD + x);
      im.data[q] = im.data[q + 1] = im.data[q + 2] = g;
      im.data[q + 3] = 255;
    }
    pctx.putImageData(im, 0, 0);
    copyBtn.textContent = "Copy a test digit (next: #" + ((n + 1) % N + 1) + ")";
    nextCopy = (n + 1) % N;
    refreshDrawn();
  }
  copyBtn.addEventListener("click", function () { copyDigit(nextCopy); });
  testCanvas.addEventListener("click", function (e) {
    var rect = testCanvas.getBoundingClientRect();
    var x = (e.clientX - rect.left) * testCanvas.width / rect.width - TGAP, y = (e.clientY - rect.top) * testCanvas.height / rect.height - TGAP;
    var n = Math.floor(y / TT) * TCOLS + Math.floor(x / TT);
    if (x >= 0 && y >= 0 && n >= 0 && n < N) copyDigit(n);
  });

  // ------------------------------------------------------------------------------------------
  // One update: z -> K (Eq. 2) -> filter grid, test digits, drawn digit
  // ------------------------------------------------------------------------------------------
  function classifyDrawn() {                  // the drawn digit at the current K (after a stroke, or a move of z)
    if (drawnFeat) {
      root.hnPrediction = forwardFromFeatures(drawnFeat, kernel, drawnProbs);   // the literal forward pass with K
      root.hnProbs = Array.prototype.slice.call(drawnProbs);
      predText.textContent = "Prediction: " + root.hnPrediction + " (probability " + drawnProbs[root.hnPrediction].toFixed(2) + ")";
      for (var c = 0; c < NCLS; c++) {
        bars[c].style.width = (100 * drawnProbs[c]).toFixed(1) + "%";
        bars[c].className = "hn-zx-fill" + (c === root.hnPrediction ? " hn-zx-best" : "");
        barVals[c].textContent = (100 * drawnProbs[c]).toFixed(1) + "%";
      }
    } else {
      root.hnPrediction = null;
      root.hnProbs = null;
      predText.textContent = "Draw a digit.";
      for (var c2 = 0; c2 < NCLS; c2++) { bars[c2].style.width = "0"; barVals[c2].textContent = "\u2013"; }
    }
  }
  var zNorm = Math.sqrt(zStar.reduce(function (a, v) { return a + v * v; }, 0)) || 1;
  var accStar = null;
  function update() {
    var t0 = performance.now();
    kernelAt(z, kernel);
    drawKernel();
    var kmax = 0;
    for (var q = 0; q < kernel.length; q++) { var a = Math.abs(kernel[q]); if (a > kmax) kmax = a; }
    kernelInfo.textContent = "max |K| = " + kmax.toFixed(3) + (kmax > VMAX ? " (beyond the scale: saturated)" : "");
    var dist = 0;
    for (var j = 0; j < NZ; j++) { outputs[j].textContent = fmt(z[j]); dist += (z[j] - zStar[j]) * (z[j] - zStar[j]); }
    zInfo.textContent = "z = [" + z.map(function (v) { return fmt(v); }).join(", ") + "], |z \u2212 z*| = " +
      (Math.sqrt(dist) / zNorm).toFixed(2) + " |z*|";
    if (ready) {
      root.hnAccuracy = classifyTestDigits(z);
      accText.textContent = "Accuracy on these " + N + " test digits at this z: " + (100 * root.hnAccuracy).toFixed(0) +
        "% (at z*: " + (100 * accStar).toFixed(0) + "%). Misclassified digits have a red frame; click one to copy it into the drawing area.";
      testCanvas.setAttribute("aria-label", "the " + N + " embedded test digits; " + Math.round((1 - root.hnAccuracy) * N) +
        " misclassified at this z, framed in red");
      drawTests();
    }
    classifyDrawn();
    root.hnZ = z.slice();
    root.hnKernel = kernel;
    root.hnTestProbs = testProbs;
    root.hnPredictions = predictions;
    root.hnLastUpdateMs = performance.now() - t0;
  }

  // ------------------------------------------------------------------------------------------
  // Controls
  // ------------------------------------------------------------------------------------------
  var anim = null, pathK = 0;
  function stopAnim() {
    if (anim !== null) cancelAnimationFrame(anim);
    anim = null;
    root.hnAnimating = false;
  }
  function setZ(v, fromSlider) {
    for (var j = 0; j < NZ; j++) {
      z[j] = +v[j];
      if (j !== fromSlider) sliders[j].value = z[j];       // the slider shows z rounded to its step; z stays exact
    }
    update();
  }
  function setT(t) {
    var end = paths[pathK].end;
    tSlider.value = t;
    tOut.textContent = (+t).toFixed(2);
    setZ(zStar.map(function (v, j) { return (1 - t) * v + t * end[j]; }));   // z = (1−t)·z* + t·end
  }
  sliders.forEach(function (s) {
    s.addEventListener("input", function () {
      stopAnim();
      var v = z.slice();
      v[+s.dataset.j] = +s.value;
      setZ(v, +s.dataset.j);
    });
  });
  tSlider.addEventListener("input", function () { stopAnim(); setT(+tSlider.value); });
  resetBtn.addEventListener("click", function () {
    stopAnim();
    tSlider.value = 0;
    tOut.textContent = "0.00";
    setZ(zStar);
  });
  function reduceMotion() {
    return !!(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);
  }
  pathBtns.forEach(function (b) {
    b.addEventListener("click", function () {
      stopAnim();
      pathK = +b.dataset.k;
      tLabel.textContent = "t along " + paths[pathK].label;
      root.hnAnimationFrames = 0;
      if (reduceMotion() || !(data.animate_ms > 0)) { setT(1); return; }   // jump to the end
      var start = performance.now();
      root.hnAnimating = true;
      var tick = function (now) {
        var t = Math.min(1, Math.max(0, (now - start) / data.animate_ms));
        root.hnAnimationFrames++;
        setT(t);
        if (t < 1) anim = requestAnimationFrame(tick);
        else stopAnim();
      };
      anim = requestAnimationFrame(tick);
    });
  });

  root.hnSetZ = function (v) { stopAnim(); setZ(v); return root.hnZ; };
  root.hnForward = function (x) {              // the literal forward pass at the current z, for tests
    var probs = new Float64Array(NCLS);
    forwardDirect(Float64Array.from(x), kernel, probs);
    return Array.prototype.slice.call(probs);
  };
  root.hnAnimating = false;
  root.hnAccuracy = null;
  root.hnDrawnInput = null;
  update();
  drawTests();

  // precompute the test digits in slices, so the page stays responsive while it loads
  root.hnReady = new Promise(function (resolve) {
    var n = 0;
    function chunk() {
      var t0 = performance.now();
      while (n < N && performance.now() - t0 < 30) precomputeDigit(n++);
      if (n < N) { setTimeout(chunk, 0); return; }
      ready = true;
      accStar = classifyTestDigits(zStar);
      update();
      resolve(root.hnAccuracy);
    }
    setTimeout(chunk, 0);
  });
}
