"""mx.optimizers: every optimizer's first updates against a NumPy (float64) reference and
against numbers recorded from MLX 0.32.4 (and PyTorch where the rules agree), schedules,
clip_grad_norm, the state protocol (lazy creation, init, settable state and learning rate,
partial and growing gradient trees), checkpoints through safetensors, and error paths."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mx.core as mx
import mx.optimizers as optim
from mx.utils import tree_flatten, tree_map, tree_unflatten

# ---------------------------------------------------------------------------------------------
# The problem every optimizer is run on: a tree with a matrix, a vector, a 3-d array inside a
# list and a 0-d scalar; the gradient at update t is 0.5 * p + c_t (so it depends on the
# parameters as in training). MLX_AFTER_3 holds MLX's parameters after three updates, in the
# order w, b, layers.0.k, s (recorded with mlx 0.32.4 from the same formulas).
NAMES = ("w", "b", "k", "s")
SHAPES = {"w": (3, 4), "b": (4,), "k": (2, 3, 2), "s": ()}


def initial_np():
    return {"w": np.sin(np.arange(12) * 0.7 + 0.3).reshape(3, 4).astype(np.float32),
            "b": np.cos(np.arange(4) * 1.3 + 0.2).astype(np.float32),
            "k": np.sin(np.arange(12) * 0.37 - 1.0).reshape(2, 3, 2).astype(np.float32),
            "s": np.array(0.75, np.float32)}


def grad_const(name, t):
    shape = SHAPES[name]
    n = int(np.prod(shape)) if shape else 1
    off = {"w": 0.1, "b": 0.2, "k": 0.3, "s": 0.4}[name]
    return (0.3 * np.sin(np.arange(n) * 1.1 + off + 0.9 * t) + 0.05).reshape(shape).astype(
        np.float32)


def as_tree(flat):
    """Flat {w, b, k, s} -> the nested tree the optimizers see."""
    return {"w": flat["w"], "b": flat["b"], "layers": [{"k": flat["k"]}], "s": flat["s"]}


def as_flat(tree):
    return {"w": tree["w"], "b": tree["b"], "k": tree["layers"][0]["k"], "s": tree["s"]}


def mx_grads(params, t):
    return tree_map(lambda p, n: 0.5 * p + mx.array(grad_const(n, t)), params,
                    as_tree({n: n for n in NAMES}))


def run_mx(opt, steps=3):
    """Parameters (flat NumPy dict) after each of `steps` updates."""
    params = as_tree({n: mx.array(v) for n, v in initial_np().items()})
    history = []
    for t in range(steps):
        params = opt.apply_gradients(mx_grads(params, t), params)
        mx.eval(params, opt.state)
        history.append({n: np.array(v) for n, v in as_flat(params).items()})
    return history


# ---------------------------------------------------------------------------------------------
# NumPy references, written from the update formulas. Each factory returns rule(g, p, s, t)
# for one parameter: t is the 1-based update count, s a dict of that parameter's state, and
# `lr` a function of the step count before the update (schedules).
def const(v):
    return lambda k: v


def np_sgd(lr, momentum=0.0, weight_decay=0.0, dampening=0.0, nesterov=False):
    def rule(g, p, s, t):
        g = g + weight_decay * p
        if momentum <= 0:
            return p - lr(t - 1) * g
        s["v"] = momentum * s.get("v", 0.0) + (1 - dampening) * g
        return p - lr(t - 1) * (g + momentum * s["v"] if nesterov else s["v"])
    return rule


def np_rmsprop(lr, alpha=0.99, eps=1e-8):
    def rule(g, p, s, t):
        s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g * g
        return p - lr(t - 1) * g / (np.sqrt(s["v"]) + eps)
    return rule


def np_adagrad(lr, eps=1e-8):
    def rule(g, p, s, t):
        s["v"] = s.get("v", 0.0) + g * g
        return p - lr(t - 1) * g / (np.sqrt(s["v"]) + eps)
    return rule


def np_adadelta(lr, rho=0.9, eps=1e-6):
    def rule(g, p, s, t):
        s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
        d = np.sqrt(s.get("u", 0.0) + eps) / np.sqrt(s["v"] + eps) * g
        s["u"] = rho * s.get("u", 0.0) + (1 - rho) * d * d
        return p - lr(t - 1) * d
    return rule


def np_adam(lr, betas=(0.9, 0.999), eps=1e-8, bias_correction=False, weight_decay=0.0):
    b1, b2 = betas

    def rule(g, p, s, t):
        a = lr(t - 1)
        p = p * (1 - a * weight_decay)
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        if bias_correction:
            m_hat, v_hat = s["m"] / (1 - b1 ** t), s["v"] / (1 - b2 ** t)
            return p - a * m_hat / (np.sqrt(v_hat) + eps)
        return p - a * s["m"] / (np.sqrt(s["v"]) + eps)
    return rule


def np_adamax(lr, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas

    def rule(g, p, s, t):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = np.maximum(b2 * s.get("v", 0.0), np.abs(g))
        return p - lr(t - 1) * s["m"] / (s["v"] + eps)
    return rule


def np_lion(lr, betas=(0.9, 0.99), weight_decay=0.0):
    b1, b2 = betas

    def rule(g, p, s, t):
        m = s.get("m", 0.0)
        c = b1 * m + (1 - b1) * g
        s["m"] = b2 * m + (1 - b2) * g
        return p * (1 - lr(t - 1) * weight_decay) - lr(t - 1) * np.sign(c)
    return rule


def np_adafactor(lr=None, eps=(1e-30, 1e-3), clip_threshold=1.0, decay_rate=-0.8, beta_1=None,
                 weight_decay=0.0, scale_parameter=True, relative_step=True, warmup_init=False):
    def rms(x):
        return np.sqrt(np.mean(np.square(x)))

    def rule(g, p, s, t):
        if relative_step:
            size = min(1e-6 * t if warmup_init else 1e-2, 1 / math.sqrt(t))
        else:
            size = lr(t - 1)
        if scale_parameter:
            size *= max(eps[1], rms(p))
        beta2 = 1 - t ** decay_rate
        sq = g * g + eps[0]
        if g.ndim >= 2:
            s["row"] = beta2 * s.get("row", 0.0) + (1 - beta2) * sq.mean(-1)
            s["col"] = beta2 * s.get("col", 0.0) + (1 - beta2) * sq.mean(-2)
            r = 1 / np.sqrt(s["row"] / s["row"].mean(-1, keepdims=True))
            u = r[..., :, None] * (1 / np.sqrt(s["col"]))[..., None, :] * g
        else:
            s["avg"] = beta2 * s.get("avg", 0.0) + (1 - beta2) * sq
            u = g / np.sqrt(s["avg"])
        u = size * u / max(1.0, rms(u) / clip_threshold)
        if beta_1 is not None:
            s["exp_avg"] = beta_1 * s.get("exp_avg", 0.0) + (1 - beta_1) * u
            u = s["exp_avg"]
        return p - weight_decay * size * p - u
    return rule


def np_orthogonalize(x, steps):
    a, b, c = 3.4445, -4.7750, 2.0315
    tall = x.shape[0] > x.shape[1]
    x = x.T if tall else x
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def np_muon(lr, momentum=0.95, weight_decay=0.01, nesterov=True, ns_steps=5):
    def rule(g, p, s, t):
        g = g + weight_decay * p
        s["v"] = momentum * s.get("v", 0.0) + (1 - momentum) * g
        u = (1 - momentum) * g + momentum * s["v"] if nesterov else s["v"]
        a = lr(t - 1)
        if u.ndim >= 2:
            u = np_orthogonalize(u.reshape(u.shape[0], -1), ns_steps).reshape(u.shape)
            a *= math.sqrt(max(1, u.shape[-2] / u.shape[-1]))
        return p - a * u
    return rule


def np_cosine(init, steps, end=0.0):
    return lambda k: end + 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)) * (init - end)


def np_linear(init, end, steps):
    return lambda k: init + min(k, steps) * (end - init) / steps


def np_exponential(init, rate):
    return lambda k: init * rate ** k


def run_np(rule, steps=3):
    params = {n: v.astype(np.float64) for n, v in initial_np().items()}
    states = {n: {} for n in NAMES}
    history = []
    for t in range(steps):
        grads = {n: 0.5 * params[n] + grad_const(n, t) for n in NAMES}
        params = {n: rule(grads[n], params[n], states[n], t + 1) for n in NAMES}
        history.append(dict(params))
    return history


# name: (mx optimizer factory, NumPy rule)
CASES = {
    "sgd": (lambda: optim.SGD(0.1), np_sgd(const(0.1))),
    "sgd_momentum": (lambda: optim.SGD(0.1, momentum=0.9), np_sgd(const(0.1), momentum=0.9)),
    "sgd_damp_wd": (lambda: optim.SGD(0.1, momentum=0.9, weight_decay=0.01, dampening=0.1),
                    np_sgd(const(0.1), 0.9, 0.01, 0.1)),
    "sgd_nesterov": (lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
                     np_sgd(const(0.1), 0.9, 0.05, nesterov=True)),
    "rmsprop": (lambda: optim.RMSprop(0.01), np_rmsprop(const(0.01))),
    "rmsprop_args": (lambda: optim.RMSprop(0.01, alpha=0.9, eps=1e-6),
                     np_rmsprop(const(0.01), 0.9, 1e-6)),
    "adagrad": (lambda: optim.Adagrad(0.1), np_adagrad(const(0.1))),
    "adadelta": (lambda: optim.AdaDelta(1.0), np_adadelta(const(1.0))),
    "adadelta_args": (lambda: optim.AdaDelta(0.5, rho=0.95, eps=1e-5),
                      np_adadelta(const(0.5), 0.95, 1e-5)),
    "adam": (lambda: optim.Adam(0.01), np_adam(const(0.01))),
    "adam_bc": (lambda: optim.Adam(0.01, betas=[0.8, 0.9], bias_correction=True),
                np_adam(const(0.01), (0.8, 0.9), bias_correction=True)),
    "adamw": (lambda: optim.AdamW(0.01), np_adam(const(0.01), weight_decay=0.01)),
    "adamw_bc": (lambda: optim.AdamW(0.01, weight_decay=0.1, bias_correction=True),
                 np_adam(const(0.01), bias_correction=True, weight_decay=0.1)),
    "adamax": (lambda: optim.Adamax(0.01), np_adamax(const(0.01))),
    "lion": (lambda: optim.Lion(0.01), np_lion(const(0.01))),
    "lion_wd": (lambda: optim.Lion(0.01, betas=[0.8, 0.95], weight_decay=0.1),
                np_lion(const(0.01), (0.8, 0.95), 0.1)),
    "adafactor": (lambda: optim.Adafactor(), np_adafactor()),
    "adafactor_lr": (lambda: optim.Adafactor(learning_rate=0.01, relative_step=False,
                                             scale_parameter=False, beta_1=0.9,
                                             weight_decay=0.01),
                     np_adafactor(const(0.01), relative_step=False, scale_parameter=False,
                                  beta_1=0.9, weight_decay=0.01)),
    "muon": (lambda: optim.Muon(0.02), np_muon(const(0.02))),
    "muon_args": (lambda: optim.Muon(0.02, momentum=0.9, weight_decay=0.0, nesterov=False,
                                     ns_steps=3),
                  np_muon(const(0.02), 0.9, 0.0, False, 3)),
    "sgd_cosine": (lambda: optim.SGD(optim.cosine_decay(0.1, 4, 0.01), momentum=0.5),
                   np_sgd(np_cosine(0.1, 4, 0.01), momentum=0.5)),
    "adam_joined": (lambda: optim.Adam(optim.join_schedules(
                        [optim.linear_schedule(0.0, 0.1, 2), optim.exponential_decay(0.1, 0.5)],
                        [2])),
                    np_adam(lambda k: np_linear(0.0, 0.1, 2)(k) if k < 2
                            else np_exponential(0.1, 0.5)(k - 2))),
}

MLX_AFTER_3 = {
    "sgd": [0.184035242, 0.653123617, 0.841988146, 0.624395847, 0.0693737194, -0.55485481,
        -0.914874017, -0.812414825, -0.309236407, 0.316750318, 0.747276187, 0.799472511,
        0.76796478, -0.00399209978, -0.809745491, -0.44551608, -0.796179235, -0.565562963,
        -0.216112658, 0.142882451, 0.420265853, 0.601869822, 0.726889014, 0.812882781,
        0.815718889, 0.671055019, 0.37294209, 0.00252702087, 0.566508949],
    "sgd_momentum": [0.106628068, 0.46589452, 0.669773161, 0.56384331, 0.119907163,
        -0.465489388, -0.850114763, -0.780128956, -0.289182633, 0.31821233, 0.690343916,
        0.665889502, 0.598158479, -0.0941633135, -0.732193887, -0.342946947, -0.742281258,
        -0.571957588, -0.218506649, 0.164350182, 0.415122122, 0.506257176, 0.54088968,
        0.612695694, 0.685722589, 0.627923429, 0.362529755, -0.0291159712, 0.414467156],
    "sgd_damp_wd": [0.123605885, 0.498074025, 0.69590342, 0.571260691, 0.112236224,
        -0.476477832, -0.857624292, -0.785977364, -0.295764953, 0.316009551, 0.701868594,
        0.692580521, 0.630475879, -0.0786492974, -0.748153031, -0.362683982, -0.747697771,
        -0.570879459, -0.221197322, 0.158467889, 0.417539328, 0.526520729, 0.574903965,
        0.64514029, 0.704221368, 0.63383019, 0.366913974, -0.0195534267, 0.443376899],
    "sgd_nesterov": [0.0142625868, 0.312891006, 0.543037236, 0.509127259, 0.130465716,
        -0.415199041, -0.774898827, -0.691726148, -0.221539304, 0.311603099, 0.580326498,
        0.49165085, 0.413565338, -0.141129166, -0.597260714, -0.230819657, -0.684999287,
        -0.527365863, -0.17079176, 0.185258463, 0.361822784, 0.367572188, 0.36204657,
        0.458864808, 0.587000787, 0.56369406, 0.299955904, -0.0866920352, 0.259668648],
    "rmsprop": [0.0438112915, 0.634845436, 0.814502478, 0.535974741, 0.134863928, -0.498260826,
        -0.809978187, -0.609147549, -0.291953564, 0.310349315, 0.58357209, 0.736846387,
        0.741296768, -0.0929333791, -0.675304711, -0.337271988, -0.708005965, -0.512622058,
        -0.182822511, 0.327327639, 0.370166212, 0.490757108, 0.712313354, 0.806575179,
        0.760224521, 0.52870971, 0.338359207, -0.204154924, 0.516131699],
    "rmsprop_args": [0.213433743, 0.773128569, 0.932084739, 0.623622537, 0.0790340155,
        -0.570681393, -0.917557836, -0.794669032, -0.346653163, 0.310504198, 0.764099598,
        0.907583237, 0.902312636, 0.0132584441, -0.85623312, -0.496802807, -0.79089874,
        -0.570762694, -0.233096585, 0.188451707, 0.431916118, 0.667107701, 0.86485368,
        0.935602427, 0.868653595, 0.655798256, 0.398205131, -0.0169752743, 0.673510969],
    "adagrad": [0.0441478118, 0.635281384, 0.814880311, 0.536240935, 0.135049045, -0.498229086,
        -0.810408235, -0.609378278, -0.292090684, 0.310307384, 0.583863258, 0.737210512,
        0.741711199, -0.0927291587, -0.675583065, -0.337664455, -0.708246291, -0.512818635,
        -0.183053017, 0.327217519, 0.370243877, 0.491073519, 0.712751389, 0.806995034,
        0.760569453, 0.529190958, 0.338455379, -0.203982502, 0.516551912],
    "adadelta": [0.284107119, 0.832587361, 0.98421371, 0.668993592, 0.0459036008, -0.607036948,
        -0.969892621, -0.870800018, -0.36716786, 0.312603325, 0.83827579, 0.978071868,
        0.969530225, 0.0634738579, -0.930109739, -0.564176738, -0.835154891, -0.585771143,
        -0.251233995, 0.120844498, 0.454595923, 0.739519477, 0.92919594, 0.991632164,
        0.918193281, 0.71621877, 0.420288086, 0.058896035, 0.73967731],
    "adadelta_args": [0.270229578, 0.821900487, 0.975291491, 0.661360383, 0.0510570034,
        -0.601263642, -0.96083492, -0.855469823, -0.35973236, 0.31385535, 0.823440194,
        0.964328289, 0.95675391, 0.0548000522, -0.915306807, -0.551278114, -0.827720284,
        -0.581458628, -0.244150311, 0.132650465, 0.446530879, 0.72516638, 0.917227507,
        0.981808186, 0.90981698, 0.705278695, 0.412116945, 0.0444958881, 0.727179527],
    "adam": [0.173931003, 0.719497442, 0.874426007, 0.567128003, 0.136137962, -0.51121062,
        -0.86255151, -0.765926957, -0.334192455, 0.318423152, 0.730149329, 0.866637409,
        0.856489062, -0.0445694961, -0.822202682, -0.451751202, -0.734968901, -0.595501959,
        -0.242690414, 0.220451102, 0.430038512, 0.629951477, 0.815608978, 0.879695058,
        0.810507715, 0.606810331, 0.392588943, -0.0395586938, 0.626462519],
    "adam_bc": [0.265941381, 0.811782062, 0.962949812, 0.648333192, 0.0659759045, -0.586538434,
        -0.949124396, -0.854678571, -0.368005365, 0.309916139, 0.821106911, 0.959531248,
        0.950062692, 0.0422860458, -0.912946165, -0.544927657, -0.814667165, -0.594908297,
        -0.256704062, 0.137280956, 0.457707614, 0.721740663, 0.909108937, 0.97051245,
        0.896983862, 0.696314335, 0.422572255, 0.0440400355, 0.72000277],
    "adamw": [0.173852488, 0.719256461, 0.874141574, 0.566943347, 0.136116058, -0.511043608,
        -0.862275541, -0.765670776, -0.33407709, 0.318344742, 0.729903519, 0.866350651,
        0.856205463, -0.0445798337, -0.821929395, -0.451589078, -0.734737873, -0.595337451,
        -0.242610171, 0.220408589, 0.429898083, 0.629735947, 0.815338016, 0.879407227,
        0.810244441, 0.606606543, 0.392457962, -0.0395703875, 0.626248062],
    "adamw_bc": [0.265164047, 0.809260607, 0.959921122, 0.646222889, 0.0664579272,
        -0.584327102, -0.946189463, -0.852215767, -0.367383361, 0.308321208, 0.818689167,
        0.956648886, 0.947177589, 0.0419422984, -0.910266697, -0.543265641, -0.812052667,
        -0.594194651, -0.25694406, 0.136666358, 0.456975758, 0.719605327, 0.90632695,
        0.967491984, 0.894138932, 0.694163203, 0.421884269, 0.0441808254, 0.717800617],
    "adamax": [0.290838122, 0.836226046, 0.987257838, 0.671671689, 0.045318827, -0.608363092,
        -0.973305404, -0.879463911, -0.372425646, 0.311688989, 0.846185505, 0.984626174,
        0.974904358, 0.066102691, -0.937924385, -0.569870055, -0.837754071, -0.58971113,
        -0.256499469, 0.113603644, 0.460770935, 0.746796489, 0.933873236, 0.995011628,
        0.921057284, 0.720856965, 0.426214188, 0.0676714927, 0.744865477],
    "lion": [0.265520245, 0.811470985, 0.961664855, 0.645463228, 0.05158066, -0.58185792,
        -0.94753015, -0.853454709, -0.363876671, 0.321541339, 0.820436656, 0.959358275,
        0.950066626, 0.0407372043, -0.912222385, -0.544824004, -0.811470985, -0.579144776,
        -0.24708055, 0.139778301, 0.451779187, 0.721280456, 0.9090994, 0.969815671,
        0.895211577, 0.695384443, 0.417379886, 0.0415315181, 0.720000029],
    "lion_wd": [0.26466459, 0.808979154, 0.95872283, 0.643468916, 0.051426053, -0.580054224,
        -0.944630504, -0.850836992, -0.362746179, 0.320617676, 0.817917883, 0.956423223,
        0.94715941, 0.040555194, -0.909428537, -0.543131292, -0.808979154, -0.577369153,
        -0.246300086, 0.139419317, 0.450385243, 0.719058871, 0.906314969, 0.966849267,
        0.89246875, 0.693240464, 0.416089058, 0.0413471237, 0.717782319],
    "adafactor": [0.272117704, 0.819235623, 0.973796427, 0.66783005, 0.0560676865,
        -0.599901557, -0.962200224, -0.863614559, -0.35850507, 0.312241435, 0.831569195,
        0.947515309, 0.957641304, 0.0547331981, -0.917389929, -0.552355409, -0.821880281,
        -0.582996428, -0.242379934, 0.121718794, 0.453881383, 0.726002991, 0.921852112,
        0.982504845, 0.907369435, 0.715327799, 0.419643372, 0.0446990766, 0.727724254],
    "adafactor_lr": [0.289710283, 0.835480213, 0.986355126, 0.672922909, 0.0470482372,
        -0.607546628, -0.973222852, -0.879069805, -0.370882183, 0.31152156, 0.845858395,
        0.977732241, 0.974098861, 0.0660458431, -0.935845435, -0.568939447, -0.83502847,
        -0.588389099, -0.255649954, 0.113117412, 0.460247546, 0.743683338, 0.933881402,
        0.994167984, 0.919225156, 0.722577393, 0.426638842, 0.0638894588, 0.74416548],
    "muon": [0.291730732, 0.809573948, 0.952426732, 0.67436111, 0.0814016834, -0.596870601,
        -0.994664133, -0.856515169, -0.360065132, 0.316655964, 0.832001805, 0.946129382,
        0.973875523, 0.0682186559, -0.938666582, -0.571065485, -0.815460265, -0.59316057,
        -0.257530957, 0.120229065, 0.45419398, 0.693368852, 0.902312458, 0.962899923,
        0.902127564, 0.715871811, 0.42026931, 0.059446387, 0.744592011],
    "muon_args": [0.294676483, 0.811601162, 0.952142417, 0.678840578, 0.0851626769,
        -0.59415108, -1.00040936, -0.857557416, -0.359654665, 0.321012199, 0.834851146,
        0.94366163, 0.972129047, 0.0672694817, -0.937895596, -0.570009351, -0.814277649,
        -0.595583081, -0.25913012, 0.121027172, 0.454283684, 0.688532591, 0.907374203,
        0.96601963, 0.903826594, 0.717704773, 0.422691613, 0.0610123985, 0.743020236],
    "sgd_cosine": [0.18502295, 0.620809317, 0.802409768, 0.610159934, 0.0882759467,
        -0.525451124, -0.903122425, -0.82384342, -0.324899852, 0.315777838, 0.757615089,
        0.800467253, 0.756470025, -0.0266227778, -0.819996476, -0.438923985, -0.783483326,
        -0.579932928, -0.235181689, 0.141958386, 0.435355604, 0.608404398, 0.705587626,
        0.772249401, 0.784531713, 0.66881609, 0.390321612, 0.012936281, 0.553373635],
    "adam_joined": [-0.395429194, 0.158183932, 0.354934365, 0.12332496, 0.389649421,
        -0.149500489, -0.354682714, -0.216548473, 0.190702662, 0.422413468, 0.164344341,
        0.287645489, 0.274305612, -0.516040206, -0.258961022, 0.123488069, -0.30554527,
        -0.373716235, 0.121654928, 0.662344575, -0.0352724493, 0.0590156913, 0.237048745,
        0.33451438, 0.313167304, 0.0468563139, -0.098085016, -0.549096644, 0.0465166271],
}


def flat_values(params):
    return np.concatenate([np.ravel(params[n]) for n in NAMES])


@pytest.mark.parametrize("name", list(CASES))
def test_first_updates_match_numpy_and_mlx(name):
    make, rule = CASES[name]
    got = run_mx(make())
    want = run_np(rule)
    for t, (g, w) in enumerate(zip(got, want)):
        for n in NAMES:
            assert g[n].dtype == np.float32 and g[n].shape == SHAPES[n]
            np.testing.assert_allclose(g[n], w[n], rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name}: {n} after update {t + 1}")
    np.testing.assert_allclose(flat_values(got[-1]), MLX_AFTER_3[name], rtol=1e-5, atol=1e-6)


def test_adafactor_warmup_init():
    # The warm-up step size is 1e-6 * t: start from zero parameters so that float32 keeps
    # the tiny steps exact enough to compare.
    def grads(t):
        return {"m": np.cos(np.arange(6) * 0.9 + t).reshape(2, 3).astype(np.float32),
                "v": np.sin(np.arange(3) * 0.8 + t + 0.5).astype(np.float32)}

    opt = optim.Adafactor(warmup_init=True, scale_parameter=False, clip_threshold=0.5)
    rule = np_adafactor(warmup_init=True, scale_parameter=False, clip_threshold=0.5)
    params = {"m": mx.zeros((2, 3)), "v": mx.zeros((3,))}
    ref = {"m": np.zeros((2, 3)), "v": np.zeros(3)}
    states = {"m": {}, "v": {}}
    for t in range(3):
        g = grads(t)
        params = opt.apply_gradients({k: mx.array(v) for k, v in g.items()}, params)
        ref = {k: rule(g[k].astype(np.float64), ref[k], states[k], t + 1) for k in ref}
    for k in ref:
        np.testing.assert_allclose(np.array(params[k]), ref[k], rtol=1e-4, atol=1e-12)
    mlx = {"m": [-3.36333244e-07, 2.25520967e-06, 3.63370646e-06, 1.57551051e-06,
                 -8.51067057e-07, -2.59164972e-06],
           "v": [-3.33980142e-06, -1.08831841e-06, 1.53664985e-06]}
    for k in mlx:
        np.testing.assert_allclose(np.array(params[k]).ravel(), mlx[k], rtol=1e-5)


def test_every_case_moves_every_parameter():
    # Guards the comparisons above: a no-op optimizer would fail them, not pass silently.
    start = flat_values(initial_np())
    for name in CASES:
        moved = np.abs(np.array(MLX_AFTER_3[name]) - start) > 1e-4
        assert moved.mean() > 0.9, name


# ---------------------------------------------------------------------------------------------
# PyTorch, where its optimizer has the same rule (SGD without dampening, RMSprop, Adagrad,
# Adadelta, Adam/AdamW with bias correction, cosine annealing).
TORCH_CASES = {
    "sgd_momentum": lambda T, ps: T.optim.SGD(ps, lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda T, ps: T.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                              weight_decay=0.05),
    "rmsprop_args": lambda T, ps: T.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6),
    "adagrad": lambda T, ps: T.optim.Adagrad(ps, lr=0.1, eps=1e-8),
    "adadelta_args": lambda T, ps: T.optim.Adadelta(ps, lr=0.5, rho=0.95, eps=1e-5),
    "adam_bc": lambda T, ps: T.optim.Adam(ps, lr=0.01, betas=(0.8, 0.9), eps=1e-8),
    "adamw_bc": lambda T, ps: T.optim.AdamW(ps, lr=0.01, weight_decay=0.1, eps=1e-8),
    "sgd_cosine": lambda T, ps: T.optim.SGD(ps, lr=0.1, momentum=0.5),
}


@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_first_updates_match_pytorch(name):
    torch = pytest.importorskip("torch")
    params = {n: torch.tensor(v, requires_grad=True) for n, v in initial_np().items()}
    opt = TORCH_CASES[name](torch, list(params.values()))
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
             if name == "sgd_cosine" else None)
    for t in range(3):
        for n, p in params.items():
            p.grad = 0.5 * p.detach() + torch.from_numpy(grad_const(n, t))
        opt.step()
        if sched is not None:
            sched.step()
    got = run_mx(CASES[name][0]())[-1]
    for n in NAMES:
        np.testing.assert_allclose(got[n], params[n].detach().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: {n}")


# ---------------------------------------------------------------------------------------------
# Schedules: values at steps 0..7 (MLX's, recorded), as functions of a uint64 step like the
# optimizer's own counter.
SCHEDULES = {
    "exponential": (lambda: optim.exponential_decay(0.1, 0.9), np_exponential(0.1, 0.9),
                    [0.100000001, 0.0899999961, 0.0809999928, 0.0728999898, 0.0656099916,
                     0.0590489917, 0.0531440936, 0.0478296839]),
    "step": (lambda: optim.step_decay(0.1, 0.9, 2), lambda k: 0.1 * 0.9 ** (k // 2),
             [0.100000001, 0.100000001, 0.0899999961, 0.0899999961, 0.0809999928,
              0.0809999928, 0.0728999898, 0.0728999898]),
    "cosine": (lambda: optim.cosine_decay(0.1, 4, 0.01), np_cosine(0.1, 4, 0.01),
               [0.100000001, 0.0868198052, 0.0549999997, 0.0231801961, 0.00999999978,
                0.00999999978, 0.00999999978, 0.00999999978]),
    "linear": (lambda: optim.linear_schedule(0.0, 0.1, 4), np_linear(0.0, 0.1, 4),
               [0, 0.0250000004, 0.0500000007, 0.075000003, 0.100000001, 0.100000001,
                0.100000001, 0.100000001]),
    "joined": (lambda: optim.join_schedules([optim.linear_schedule(0.0, 0.1, 2),
                                             optim.cosine_decay(0.1, 4)], [2]),
               lambda k: np_linear(0.0, 0.1, 2)(k) if k < 2 else np_cosine(0.1, 4)(k - 2),
               [0, 0.0500000007, 0.100000001, 0.0853553414, 0.049999997, 0.0146446619, 0, 0]),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_values(name):
    make, ref, mlx_values = SCHEDULES[name]
    schedule = make()
    values = schedule(mx.array(list(range(8)), mx.uint64))
    assert values.dtype == mx.float32 and values.shape == (8,)
    np.testing.assert_allclose(np.array(values), [ref(k) for k in range(8)], rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(np.array(values), mlx_values, rtol=1e-6, atol=1e-8)
    # one step at a time, as the optimizer calls it
    for k in (0, 3, 7):
        assert schedule(mx.array(k, mx.uint64)).item() == pytest.approx(ref(k), rel=1e-6,
                                                                       abs=1e-8)


@pytest.mark.parametrize("make, updates, first, last", [
    (lambda: optim.SGD(learning_rate=optim.exponential_decay(1e-1, 0.9)), 5, 0.1, 0.06561),
    (lambda: optim.SGD(learning_rate=optim.step_decay(1e-1, 0.9, 10)), 21, 0.1, 0.081),
    (lambda: optim.SGD(learning_rate=optim.cosine_decay(1e-1, 1000)), 5, 0.1, 0.0999961),
    (lambda: optim.Adam(learning_rate=optim.join_schedules(
        [optim.linear_schedule(0, 1e-1, steps=10), optim.cosine_decay(1e-1, 200)], [10])),
     12, 0.0, 0.0999938),
    (lambda: optim.Adam(learning_rate=optim.linear_schedule(0, 1e-1, 100)), 101, 0.0, 0.1),
])
def test_mlx_documented_schedule_examples(make, updates, first, last):
    opt = make()
    assert opt.learning_rate.dtype == mx.float32
    assert opt.learning_rate.item() == pytest.approx(first, abs=1e-7)
    for _ in range(updates):
        opt.update({}, {})
    assert opt.step.item() == updates
    assert opt.learning_rate.item() == pytest.approx(last, rel=1e-5)


def test_schedules_accept_python_int_steps():
    assert optim.exponential_decay(0.1, 0.5)(2) == pytest.approx(0.025)
    assert optim.step_decay(0.1, 0.5, 2)(5) == pytest.approx(0.025)
    assert optim.cosine_decay(1.0, 2)(1).item() == pytest.approx(0.5)
    assert optim.linear_schedule(1.0, 3.0, 4)(2).item() == pytest.approx(2.0)


@pytest.mark.parametrize("call, match", [
    (lambda: optim.step_decay(0.1, 0.9, 0), r"\[step_decay\] step_size must be greater than 0"),
    (lambda: optim.cosine_decay(0.1, 0), r"\[cosine_decay\] decay_steps must be greater than 0"),
    (lambda: optim.linear_schedule(0.0, 0.1, -1),
     r"\[linear_schedule\] steps must be greater than 0, but got -1"),
    (lambda: optim.join_schedules([], []), r"\[join_schedules\] Must provide at least 1"),
    (lambda: optim.join_schedules([optim.exponential_decay(0.1, 0.9)] * 2, [1, 2]),
     r"\[join_schedules\] Received 2 boundaries but expected 1"),
])
def test_schedule_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# clip_grad_norm
def test_clip_grad_norm_matches_numpy_and_mlx():
    grads = {"a": mx.array([3.0, -4.0]), "h": mx.array([[1.0, 2.0]], dtype=mx.float16),
             "i": mx.array([2, 2], dtype=mx.int32)}
    clipped, norm = optim.clip_grad_norm(grads, 2.0)
    assert norm.item() == pytest.approx(math.sqrt(38), rel=1e-6)       # MLX: 6.16441
    scale = 2.0 / (math.sqrt(38) + 1e-6)
    np.testing.assert_allclose(np.array(clipped["a"]), [3 * scale, -4 * scale], rtol=1e-6)
    np.testing.assert_allclose(np.array(clipped["a"]), [0.973328, -1.29777], rtol=1e-5)
    # floating gradients keep their dtype, integer ones become float32 (as MLX)
    assert clipped["h"].dtype == mx.float16 and clipped["i"].dtype == mx.float32
    np.testing.assert_allclose(np.array(clipped["h"], np.float32), [[0.324463, 0.648926]],
                               rtol=1e-3)
    np.testing.assert_allclose(np.array(clipped["i"]), [0.648886, 0.648886], rtol=1e-5)


def test_clip_grad_norm_below_the_limit_and_float16_overflow():
    grads = [mx.array([0.3, 0.4]), {"b": mx.array([0.0])}]
    clipped, norm = optim.clip_grad_norm(grads, 1.0)
    assert norm.item() == pytest.approx(0.5)
    assert isinstance(clipped, list) and set(clipped[1]) == {"b"}
    np.testing.assert_allclose(np.array(clipped[0]), [0.3, 0.4], rtol=1e-6)
    # squares of 1000 overflow float16; the norm is computed in float32
    big = {"g": mx.full((4,), 1000.0, dtype=mx.float16)}
    clipped, norm = optim.clip_grad_norm(big, 1.0)
    assert norm.dtype == mx.float32 and norm.item() == pytest.approx(2000.0)
    np.testing.assert_allclose(np.array(clipped["g"], np.float32), 0.5, rtol=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-100, 100, width=32), min_size=1, max_size=5),
                min_size=1, max_size=4),
       st.floats(0.0, 50.0))
def test_clip_grad_norm_property(leaves, max_norm):
    grads = {f"p{i}": mx.array(np.array(v, np.float32)) for i, v in enumerate(leaves)}
    clipped, norm = optim.clip_grad_norm(grads, max_norm)
    flat = np.concatenate([np.array(v, np.float64) for v in leaves])
    total = np.sqrt(np.sum(flat ** 2))
    assert norm.item() == pytest.approx(total, rel=1e-5, abs=1e-5)
    factor = min(max_norm / (total + 1e-6), 1.0)
    for i, v in enumerate(leaves):
        np.testing.assert_allclose(np.array(clipped[f"p{i}"]), np.array(v) * factor,
                                   rtol=1e-5, atol=1e-5)


def test_clip_grad_norm_errors():
    with pytest.raises(ValueError, match=r"\[clip_grad_norm\] max_norm should be >=0, -1"):
        optim.clip_grad_norm({"a": mx.array([1.0])}, -1)
    with pytest.raises(TypeError, match=r"\[clip_grad_norm\] gradients must be arrays, got str"):
        optim.clip_grad_norm({"a": "x"}, 1.0)


# ---------------------------------------------------------------------------------------------
# The state protocol
class Model(dict):
    """What an optimizer relies on in an nn.Module: a dict of parameters (nested dicts and
    lists) with trainable_parameters() and update()."""

    def trainable_parameters(self):
        return tree_map(lambda x: x, dict(self))

    def update(self, params):
        _assign(self, params)
        return self


class AttrModel:
    """A module that is not a dict: only trainable_parameters() and update()."""

    def __init__(self, params):
        self.params = params

    def trainable_parameters(self):
        return tree_map(lambda x: x, self.params)

    def update(self, params):
        _assign(self.params, params)


def _assign(dst, src):
    for k, v in (src.items() if isinstance(src, dict) else enumerate(src)):
        if isinstance(v, (dict, list, tuple)):
            _assign(dst[k], v)
        else:
            dst[k] = v


def small_model():
    return Model(w=mx.array([[1.0, -2.0], [0.5, 3.0]]), b=mx.array([0.1, -0.1]),
                 layers=[Model(k=mx.array([1.0, 2.0, 3.0]))])


def small_grads(model, t=0):
    return tree_map(lambda p: 0.5 * p + 0.1 * (t + 1), model.trainable_parameters())


def test_new_optimizer_state_holds_step_and_learning_rate():
    opt = optim.SGD(learning_rate=0.1, momentum=0.9)
    assert set(opt.state) == {"step", "learning_rate"}
    assert opt.step.dtype == mx.uint64 and opt.step.item() == 0
    assert opt.learning_rate.dtype == mx.float32
    assert opt.learning_rate.item() == pytest.approx(0.1)
    # an integer rate stays an integer array (MLX), cast to the gradient's dtype on use
    opt = optim.SGD(1)
    assert opt.learning_rate.dtype == mx.int32
    out = opt.apply_gradients({"w": mx.array([1.0])}, {"w": mx.array([2.0])})
    assert out["w"].dtype == mx.float32 and out["w"].tolist() == [1.0]


def test_init_creates_state_parallel_to_the_parameters():
    model = small_model()
    opt = optim.SGD(learning_rate=1e-1, momentum=0.9)
    opt.init(model.trainable_parameters())
    assert list(opt.state.keys()) == ["step", "learning_rate", "w", "b", "layers"]
    assert isinstance(opt.state["layers"], list) and set(opt.state["layers"][0]) == {"k"}
    assert opt.state["layers"][0]["k"]["v"].tolist() == [0.0, 0.0, 0.0]
    assert opt.state["w"]["v"].shape == (2, 2)
    # init again keeps what is there
    opt.state["b"]["v"] = mx.array([5.0, 5.0])
    opt.init(model.trainable_parameters())
    assert opt.state["b"]["v"].tolist() == [5.0, 5.0]
    assert opt.step.item() == 0


def test_state_is_created_on_the_first_update_and_updated_in_place():
    model = small_model()
    opt = optim.Adam(learning_rate=0.1)
    state = opt.state
    opt.update(model, small_grads(model))
    mx.eval(dict(model), opt.state)
    assert opt.state is state            # compile captures this very dict
    assert opt.step.item() == 1
    assert set(state["w"]) == {"m", "v"} and state["layers"][0]["k"]["m"].shape == (3,)
    np.testing.assert_allclose(np.array(state["b"]["m"]),
                               0.1 * (0.5 * np.array([0.1, -0.1]) + 0.1), rtol=1e-6)


def test_update_leaves_parameters_without_gradient_alone():
    model = small_model()
    w, k = model["w"], model["layers"][0]["k"]
    opt = optim.SGD(learning_rate=0.5)
    opt.update(model, {"b": mx.array([1.0, 1.0])})
    assert model["w"] is w and model["layers"][0]["k"] is k
    np.testing.assert_allclose(np.array(model["b"]), [-0.4, -0.6], rtol=1e-6)
    assert set(opt.state) == {"step", "learning_rate", "b"}
    # a later gradient for another parameter gets its state then (MLX raises KeyError)
    opt = optim.Adam(learning_rate=0.1)
    opt.update(model, {"b": mx.array([1.0, 1.0])})
    opt.update(model, {"layers": [{"k": mx.array([1.0, 1.0, 1.0])}]})
    assert opt.step.item() == 2 and set(opt.state["layers"][0]["k"]) == {"m", "v"}
    np.testing.assert_allclose(np.array(model["layers"][0]["k"]), np.array([1.0, 2.0, 3.0])
                               - 0.1 * 0.1 / (math.sqrt(0.001) + 1e-8), rtol=1e-5)


def test_update_of_a_module_that_is_not_a_dict():
    params = {"w": mx.array([1.0, 2.0]), "b": mx.array(0.0)}
    model = AttrModel(params)
    opt = optim.SGD(learning_rate=0.1)
    opt.update(model, {"w": mx.array([1.0, -1.0])})
    assert model.params["w"].tolist() == pytest.approx([0.9, 2.1])
    assert model.params["b"].item() == 0.0


def test_apply_gradients_keeps_the_gradients_structure():
    params = {"pair": (mx.array([1.0]), mx.array([2.0])), "list": [mx.array(3.0)],
              "extra": mx.array([9.0])}
    grads = {"pair": (mx.array([1.0]), mx.array([1.0])), "list": [mx.array(1.0)]}
    opt = optim.SGD(learning_rate=1.0, momentum=0.5)
    out = opt.apply_gradients(grads, params)
    assert set(out) == {"pair", "list"} and isinstance(out["pair"], tuple)
    assert [a.item() for a in out["pair"]] == [0.0, 1.0] and out["list"][0].item() == 2.0
    assert isinstance(opt.state["pair"], list) and opt.state["pair"][1]["v"].tolist() == [1.0]
    out = opt.apply_gradients(grads, out)           # momentum: v = 0.5 * 1 + 1
    assert out["list"][0].item() == pytest.approx(0.5)


def test_float16_parameters_keep_their_dtype():
    # MLX: w -> [0.980469, -2.01953, 0.519531] (float16) after two bias-corrected steps
    params = {"w": mx.array([1.0, -2.0, 0.5], dtype=mx.float16)}
    opt = optim.Adam(0.01, bias_correction=True)
    for _ in range(2):
        params = opt.apply_gradients({"w": mx.array([0.1, 0.2, -0.3], dtype=mx.float16)},
                                     params)
    assert params["w"].dtype == mx.float16 and opt.state["w"]["m"].dtype == mx.float16
    np.testing.assert_allclose(np.array(params["w"], np.float32), [0.980469, -2.01953, 0.519531],
                               rtol=1e-3)


def test_state_is_settable():
    model = small_model()
    opt = optim.Adam(learning_rate=0.1)
    opt.update(model, small_grads(model))
    new_state = {"step": mx.array(10, mx.uint64), "learning_rate": mx.array(0.01)}
    opt.state = new_state
    assert opt.state is new_state and opt.step.item() == 10
    opt.update(model, small_grads(model))
    assert opt.step.item() == 11 and set(new_state["w"]) == {"m", "v"}
    assert opt.learning_rate.item() == pytest.approx(0.01)
    with pytest.raises(TypeError, match=r"\[Adam.state\] the state must be a dict, got list"):
        opt.state = [1]
    with pytest.raises(ValueError, match=r"\[Adam.state\] the state has no 'step' entry"):
        opt.state = {"learning_rate": mx.array(0.1)}


def test_learning_rate_is_settable_to_a_value_or_a_schedule():
    opt = optim.SGD(learning_rate=0.1)
    opt.learning_rate = 0.5
    assert opt.learning_rate.item() == 0.5
    opt.learning_rate = optim.linear_schedule(1.0, 0.0, 4)
    assert opt.learning_rate.item() == 1.0
    params = {"w": mx.array([0.0])}
    lrs = []
    for _ in range(3):
        params = opt.apply_gradients({"w": mx.array([1.0])}, params)
        lrs.append(opt.learning_rate.item())
    # each update uses the schedule at the step count before it: 1, 0.75, 0.5
    assert lrs == pytest.approx([1.0, 0.75, 0.5])
    assert params["w"].item() == pytest.approx(-2.25)
    # a constant replaces the schedule (MLX would let the schedule overwrite it)
    opt.learning_rate = mx.array(0.125)
    opt.apply_gradients({"w": mx.array([1.0])}, params)
    assert opt.learning_rate.item() == 0.125
    # a schedule returning a Python float is fine too
    opt.learning_rate = lambda step: 0.25
    assert opt.learning_rate.item() == 0.25


def test_schedulers_argument_of_the_base_class():
    class Plain(optim.Optimizer):
        def apply_single(self, gradient, parameter, state):
            return parameter - self.state["rate"].astype(gradient.dtype) * gradient

    opt = Plain(schedulers={"rate": optim.exponential_decay(1.0, 0.5)})
    assert opt.state["rate"].item() == 1.0
    p = {"w": mx.array(1.0)}
    for _ in range(3):
        p = opt.apply_gradients({"w": mx.array(1.0)}, p)
    assert p["w"].item() == pytest.approx(1.0 - 1.0 - 0.5 - 0.25)
    assert opt.state["w"] == {}       # stateless: nothing kept per parameter
    with pytest.raises(TypeError, match=r"\[Plain\] schedulers must be a dict"):
        Plain(schedulers=[optim.exponential_decay(1.0, 0.5)])
    with pytest.raises(NotImplementedError, match=r"\[Optimizer\] apply_single"):
        optim.Optimizer().apply_gradients({"w": mx.array(1.0)}, {"w": mx.array(1.0)})


def test_failed_update_changes_nothing():
    opt = optim.Adam(learning_rate=optim.cosine_decay(0.1, 10))
    params = {"a": mx.array([1.0]), "b": mx.array([2.0])}
    opt.apply_gradients({"a": mx.array([1.0]), "b": mx.array([1.0])}, params)
    before = {k: np.array(v) for k, v in tree_flatten(opt.state)}
    with pytest.raises(TypeError, match=r"\[Adam\] the gradient at 'b' is a float, not an array"):
        opt.apply_gradients({"a": mx.array([1.0]), "b": 1.0}, params)
    after = {k: np.array(v) for k, v in tree_flatten(opt.state)}
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)
    assert opt.step.item() == 1


@pytest.mark.parametrize("grads, params, exc, match", [
    ({"w": mx.array([1.0])}, {"v": mx.array([1.0])}, ValueError,
     r"\[SGD\] 'w' is in the gradients but not in the parameters"),
    ({"l": [mx.array(1.0), mx.array(1.0)]}, {"l": [mx.array(1.0)]}, ValueError,
     r"\[SGD\] 'l.1' is in the gradients but not in the parameters"),
    ({"w": {"x": mx.array(1.0)}}, {"w": {"x": 2.0}}, TypeError,
     r"\[SGD\] the parameter at 'w.x' is a float, not an array"),
    ({"step": mx.array(1.0)}, {"step": mx.array(1.0)}, ValueError,
     r"\[SGD\] the state at 'step' is a array where the parameters need a dict \(a parameter "
     r"named 'step' collides"),
])
def test_apply_gradients_errors(grads, params, exc, match):
    opt = optim.SGD(learning_rate=0.1, momentum=0.9)
    with pytest.raises(exc, match=match):
        opt.apply_gradients(grads, params)
    assert opt.step.item() == 0


def test_state_structure_mismatch_is_reported():
    opt = optim.SGD(learning_rate=0.1)
    opt.init({"w": [mx.array(1.0)]})
    with pytest.raises(ValueError, match=r"\[SGD\] the state at 'w' is a list where the "
                                         r"parameters need a dict"):
        opt.apply_gradients({"w": mx.array(1.0)}, {"w": mx.array(1.0)})


def test_learning_rate_errors():
    with pytest.raises(TypeError, match=r"\[SGD\] learning_rate must be a number, an array or "
                                        r"a schedule \(a callable of the step\), got str"):
        optim.SGD("fast")
    opt = optim.Adafactor(relative_step=False)
    with pytest.raises(AttributeError, match=r"\[Adafactor\] the optimizer has no "
                                             r"learning_rate"):
        opt.learning_rate
    with pytest.raises(ValueError, match=r"\[Adafactor\] relative_step=False needs a "
                                         r"learning_rate"):
        opt.apply_gradients({"w": mx.array([1.0])}, {"w": mx.array([1.0])})
    assert opt.step.item() == 0
    opt.learning_rate = 0.1      # settable afterwards (MLX allows this order)
    out = opt.apply_gradients({"w": mx.array([1.0])}, {"w": mx.array([1.0])})
    assert out["w"].item() == pytest.approx(1.0 - 0.1 * 1.0 * 1.0, rel=1e-5)


@pytest.mark.parametrize("call, match", [
    (lambda: optim.SGD(0.1, nesterov=True),
     r"\[SGD\] Nesterov momentum requires a momentum and zero dampening"),
    (lambda: optim.SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True),
     r"\[SGD\] Nesterov momentum requires a momentum and zero dampening"),
    (lambda: optim.RMSprop(0.1, alpha=-0.5),
     r"\[RMSprop\] alpha should be >=0, -0.5 was provided instead"),
    (lambda: optim.RMSprop(0.1, eps=0.0), r"\[RMSprop\] epsilon should be >0, 0.0 was"),
    (lambda: optim.Adagrad(0.1, eps=-1e-8), r"\[Adagrad\] epsilon should be >0, -1e-08"),
    (lambda: optim.AdaDelta(0.1, rho=-0.1), r"\[AdaDelta\] rho should be >=0, -0.1"),
    (lambda: optim.AdaDelta(0.1, eps=0), r"\[AdaDelta\] epsilon should be >0, 0 was"),
    (lambda: optim.Adam(0.1, betas=[1.0, 0.999]), r"\[Adam\] beta1 should be in \[0, 1\), 1.0"),
    (lambda: optim.AdamW(0.1, betas=[0.9, -0.1]), r"\[Adam\] beta2 should be in \[0, 1\), -0.1"),
    (lambda: optim.Adam(0.1, betas=[0.9]), r"\[Adam\] betas must hold two coefficients, got 1"),
    (lambda: optim.Adam(0.1, eps=-1.0), r"\[Adam\] epsilon should be >=0, -1.0 was"),
    (lambda: optim.Adamax(0.1, eps=-1.0), r"\[Adam\] epsilon should be >=0, -1.0 was"),
    (lambda: optim.Lion(0.1, betas=[0.9, 1.5]), r"\[Lion\] beta2 should be in \[0, 1\), 1.5"),
    (lambda: optim.Adafactor(eps=(1e-30,)), r"\[Adafactor\] eps must hold two values, got 1"),
    (lambda: optim.MultiOptimizer([optim.SGD(0.1), optim.Adam(0.1)]),
     r"\[MultiOptimizer\] Given 0 filters but 1 needed"),
    (lambda: optim.MultiOptimizer([]), r"\[MultiOptimizer\] needs at least one optimizer"),
])
def test_constructor_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_signatures_and_defaults_match_mlx():
    import inspect
    assert str(inspect.signature(optim.Optimizer)) == "(schedulers=None)"
    defaults = {
        "SGD": {"momentum": 0.0, "weight_decay": 0.0, "dampening": 0.0, "nesterov": False},
        "RMSprop": {"alpha": 0.99, "eps": 1e-8},
        "Adagrad": {"eps": 1e-8},
        "AdaDelta": {"rho": 0.9, "eps": 1e-6},
        "Adam": {"betas": [0.9, 0.999], "eps": 1e-8, "bias_correction": False},
        "AdamW": {"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                  "bias_correction": False},
        "Adamax": {"betas": [0.9, 0.999], "eps": 1e-8},
        "Lion": {"betas": [0.9, 0.99], "weight_decay": 0.0},
        "Adafactor": {"learning_rate": None, "eps": (1e-30, 1e-3), "clip_threshold": 1.0,
                      "decay_rate": -0.8, "beta_1": None, "weight_decay": 0.0,
                      "scale_parameter": True, "relative_step": True, "warmup_init": False},
        "Muon": {"momentum": 0.95, "weight_decay": 0.01, "nesterov": True, "ns_steps": 5},
        "MultiOptimizer": {"filters": []},
        "cosine_decay": {"end": 0.0},
    }
    for name, want in defaults.items():
        params = inspect.signature(getattr(optim, name)).parameters
        got = {k: params[k].default for k in want}
        assert got == want, name
        assert list(params)[:len(want) + 1][-len(want):] == list(want) or name in (
            "MultiOptimizer", "cosine_decay", "Adafactor"), name
    assert list(inspect.signature(optim.Adafactor).parameters) == list(defaults["Adafactor"])
    assert list(inspect.signature(optim.MultiOptimizer).parameters) == ["optimizers", "filters"]
    assert list(inspect.signature(optim.clip_grad_norm).parameters) == ["grads", "max_norm"]
    assert list(inspect.signature(optim.join_schedules).parameters) == ["schedules",
                                                                        "boundaries"]
    assert issubclass(optim.AdamW, optim.Adam) and issubclass(optim.Adamax, optim.Adam)


# ---------------------------------------------------------------------------------------------
# MultiOptimizer
def test_multi_optimizer_routes_parameters_by_filter():
    model = small_model()
    reference = small_model()
    multi = optim.MultiOptimizer([optim.SGD(0.1, momentum=0.9), optim.Adam(0.01)],
                                 [lambda path, g: path.startswith("layers")])
    sgd, adam = optim.SGD(0.1, momentum=0.9), optim.Adam(0.01)
    for t in range(2):
        g = small_grads(model, t)
        multi.update(model, g)
        gr = small_grads(reference, t)
        reference.update(sgd.apply_gradients({"layers": gr["layers"]}, reference))
        reference.update(adam.apply_gradients({"w": gr["w"], "b": gr["b"]}, reference))
    for (k1, a), (k2, b) in zip(tree_flatten(dict(model)), tree_flatten(dict(reference))):
        assert k1 == k2
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-6, err_msg=k1)
    states = multi.state["states"]
    assert set(states[0]) == {"step", "learning_rate", "layers"}
    assert set(states[1]) == {"step", "learning_rate", "w", "b"}
    assert multi.step.item() == 2 and multi.learning_rate.item() == pytest.approx(0.1)
    multi.learning_rate = 0.5
    assert [o.learning_rate.item() for o in multi.optimizers] == [0.5, 0.5]


def test_multi_optimizer_init_and_state_setter():
    multi = optim.MultiOptimizer([optim.Adam(0.01), optim.SGD(0.1, momentum=0.5)],
                                 [lambda path, g: g.ndim == 2])
    multi.init(small_model().trainable_parameters())
    a, s = multi.state["states"]
    assert set(a) == {"step", "learning_rate", "w"}
    assert set(s) == {"step", "learning_rate", "b", "layers"}
    fresh = [{"step": mx.array(3, mx.uint64), "learning_rate": mx.array(0.2)},
             {"step": mx.array(4, mx.uint64), "learning_rate": mx.array(0.3)}]
    multi.state = {"states": fresh}
    assert [o.step.item() for o in multi.optimizers] == [3, 4]
    with pytest.raises(ValueError, match=r"\[MultiOptimizer.state\] expected \{'states'"):
        multi.state = {"states": fresh[:1]}
    with pytest.raises(ValueError, match=r"\[MultiOptimizer.state\]"):
        multi.state = fresh


# ---------------------------------------------------------------------------------------------
# Checkpoints: save the state mid-training, load it into a fresh optimizer, continue.
def _safetensors_work(tmp_path):
    if not (hasattr(mx, "save_safetensors") and hasattr(mx, "load")):
        return False
    try:
        probe = str(tmp_path / "probe.safetensors")
        mx.save_safetensors(probe, {"a": mx.array(7, mx.uint64)})
        back = mx.load(probe)
        return back["a"].dtype == mx.uint64 and back["a"].item() == 7
    except Exception:
        return False


def save_and_load(tmp_path, flat):
    """Write a flat {name: array} dict to disk and read it back."""
    if _safetensors_work(tmp_path):
        path = str(tmp_path / "state.safetensors")
        mx.save_safetensors(path, flat)
        return dict(mx.load(path))
    # mx.save_safetensors not there yet: the same round trip through NumPy's npz
    path = tmp_path / "state.npz"
    np.savez(path, **{k: np.array(v) for k, v in flat.items()})
    with np.load(path) as f:
        return {k: mx.array(f[k]) for k in f.files}


def _checkpoint_model():
    return Model(w=mx.array(initial_np()["w"]), b=mx.array(initial_np()["b"]),
                 layers=[Model(k=mx.array(initial_np()["k"]))])


@pytest.mark.parametrize("make", [
    lambda: optim.AdamW(optim.cosine_decay(0.05, 10), bias_correction=True),
    lambda: optim.MultiOptimizer([optim.SGD(0.1, momentum=0.9, nesterov=True),
                                  optim.Adafactor(beta_1=0.9)],
                                 [lambda path, g: g.ndim == 1]),
], ids=["adamw_schedule", "multi"])
def test_checkpoint_round_trip_continues_training_exactly(tmp_path, make):
    def train(model, opt, steps, start):
        for t in range(start, start + steps):
            opt.update(model, small_grads(model, t))
            mx.eval(dict(model), opt.state)

    straight_model, straight_opt = _checkpoint_model(), make()
    train(straight_model, straight_opt, 6, 0)

    model, opt = _checkpoint_model(), make()
    train(model, opt, 3, 0)
    flat_state = dict(tree_flatten(opt.state))
    saved_state = save_and_load(tmp_path, flat_state)
    assert saved_state.keys() == flat_state.keys()
    for k, v in flat_state.items():
        assert (saved_state[k].shape, saved_state[k].dtype) == (v.shape, v.dtype), k
    saved_params = {k: np.array(v) for k, v in tree_flatten(dict(model))}

    resumed_model = _checkpoint_model()
    resumed_model.update(tree_unflatten([(k, mx.array(v)) for k, v in saved_params.items()]))
    resumed_opt = make()
    resumed_opt.state = tree_unflatten(list(saved_state.items()))
    steps = [o.step for o in getattr(resumed_opt, "optimizers", [resumed_opt])]
    assert all(s.dtype == mx.uint64 and s.item() == 3 for s in steps)
    train(resumed_model, resumed_opt, 3, 3)

    for (k, a), (_, b) in zip(tree_flatten(dict(straight_model)),
                              tree_flatten(dict(resumed_model))):
        np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=k, strict=True)
    straight_state, resumed_state = (dict(tree_flatten(o.state)) for o in (straight_opt,
                                                                           resumed_opt))
    assert straight_state.keys() == resumed_state.keys()
    for k, a in straight_state.items():
        assert a.dtype == resumed_state[k].dtype, k
        np.testing.assert_array_equal(np.array(a), np.array(resumed_state[k]), err_msg=k,
                                      strict=True)
    # and the run did move: a fresh optimizer would not reproduce it
    moved = {k: np.array(v) for k, v in tree_flatten(dict(resumed_model))}
    assert not np.allclose(moved["w"], saved_params["w"])


# ---------------------------------------------------------------------------------------------
# Compiled steps and mx.nn models (when those parts are present)
def test_compiled_step_matches_eager():
    if not hasattr(mx, "compile"):
        pytest.skip("mx.compile is not available")
    from functools import partial

    def make():
        return optim.Adam(optim.cosine_decay(0.1, 10), bias_correction=True)

    params = {n: mx.array(v) for n, v in initial_np().items()}
    eager_params = dict(params)
    opt, eager_opt = make(), make()
    state = [params, opt.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(grads):
        params.update(opt.apply_gradients(grads, params))

    for t in range(3):
        grads = {n: mx.array(grad_const(n, t)) for n in SHAPES}
        step(grads)
        mx.eval(state)
        eager_params.update(eager_opt.apply_gradients(grads, eager_params))
        mx.eval(eager_params, eager_opt.state)
    assert opt.step.item() == 3 and set(opt.state["w"]) == {"m", "v"}
    for n in SHAPES:
        np.testing.assert_allclose(np.array(params[n]), np.array(eager_params[n]), rtol=1e-6,
                                   atol=1e-7, err_msg=n)


def test_training_an_nn_linear():
    nn = pytest.importorskip("mx.nn")
    if not all(hasattr(nn, a) for a in ("Linear", "value_and_grad")):
        pytest.skip("mx.nn.Linear / value_and_grad are not available yet")
    mx.random.seed(0)
    model = nn.Linear(3, 1)
    x = mx.random.normal((16, 3))
    y = x @ mx.array([[1.0], [-2.0], [0.5]]) + 0.3
    opt = optim.Adam(learning_rate=0.05)
    loss_and_grad = nn.value_and_grad(model, lambda m, x, y: mx.mean(mx.square(m(x) - y)))
    losses = []
    for _ in range(40):
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        mx.eval(model.parameters(), opt.state)
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert set(opt.state) == {"step", "learning_rate", "weight", "bias"}
