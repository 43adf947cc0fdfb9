"""Probe for issue 13 (docs/sites.md): which site-referenced signals rank dev NIH pneumonia above held-out NIH
normals. Normals split by patient into halves (fitting half = reference, other half + all dev NIH pneumonia =
measure), REPEATS splits; PatchCore banks are 4,000 random patches (BANK). Prints single-signal AUROCs and the best
2-3-signal z-sums (z from 2-fold cross-fitting inside the fitting half).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/site_probe.py [REPEATS] [MANIFEST]
"""
import sys, time, itertools, numpy as np, torch
torch.set_num_threads(1)
from sklearn.metrics import roc_auc_score
from sklearn.covariance import LedoitWolf
from medsight.training.dataset import read_manifest
from medsight.training.features import cached_maps
from medsight.training.workflow import _backbone_factory
from medsight.vision.detectors import load_detector
from medsight.vision.detectors.knn import pooled_region, _normalise, PooledKNN
from medsight.vision.detectors.patchcore import region_mask
df = read_manifest(sys.argv[2] if len(sys.argv) > 2 else '../shared/data/cxr/manifest.csv', 'dev')
nih = df[df.source == 'nih_talo'].reset_index(drop=True)
maps = np.asarray(cached_maps(nih['path'], _backbone_factory('cpu')), dtype=np.float32)
y = 1 - nih.is_normal.to_numpy(); pid = nih.patient_id.to_numpy()
N = np.flatnonzero(y == 0); P = np.flatnonzero(y == 1)
kf = load_detector('weights', 'knn_fused'); pc = load_detector('weights', 'patchcore'); fl = load_detector('weights','fused_lungs')
t0=time.time()
import os
if os.path.exists(os.path.join(os.environ.get('TMPDIR', '/tmp'), 'site_probe_shipped.npz')):
    ship = dict(np.load(os.path.join(os.environ.get('TMPDIR', '/tmp'), 'site_probe_shipped.npz')))
else:
    ship = {}
    rk, rp = kf.signals(maps), pc.signals(maps)
    for k, v in rk.items(): ship['ship.kf.'+k] = v
    for k, v in rp.items(): ship['ship.pc.'+k] = v
    ship['ship.fused_lungs'] = fl._fuse({'knn_fused': rk, 'patchcore': rp})['score']
    np.savez(os.path.join(os.environ.get('TMPDIR', '/tmp'), 'site_probe_shipped.npz'), **ship)
print('shipped', time.time()-t0, flush=True)
members = [dict(layer=l, region=r, centred=c) for l in ('relu3_3','relu4_3','relu5_3') for r in (None,[3,12,2,12]) for c in (False,True)]
emb = {PooledKNN._member_name(m): _normalise(pooled_region(maps, m['layer'], m['region'])) for m in members if not m['centred']}
mask = torch.from_numpy(region_mask())
pf = pc.patch_features(maps)[:, mask].contiguous()  # n x 132 x D
def knn_d(q, b, k=5):
    q = torch.nn.functional.normalize(torch.from_numpy(q), dim=1); b = torch.nn.functional.normalize(torch.from_numpy(b), dim=1)
    sim = q @ b.T; return (1 - torch.topk(sim, min(k, b.shape[0]), dim=1).values).mean(1).numpy()
def signals(B, Q, extra_bank=None):
    """raw site-referenced signals of films Q with bank films B"""
    out = {}
    for m in members:
        base = PooledKNN._member_name(dict(m, centred=False)); e = emb[base]
        mu = e[B].mean(0)
        ee = e - mu if m['centred'] else e
        out['knn.'+PooledKNN._member_name(m)] = knn_d(ee[Q], ee[B])
        if not m['centred']:
            lw = LedoitWolf().fit(e[B]); out['maha.'+base] = lw.mahalanobis(e[Q])
    bank = pf[B].reshape(-1, pf.shape[-1])
    if len(bank) > BANK: bank = bank[torch.from_numpy(np.random.default_rng(0).choice(len(bank), BANK, replace=False))]
    d = torch.stack([torch.cdist(pf[i], bank).min(1).values for i in Q])
    out['pc.max3'] = torch.topk(d, 3, 1).values.mean(1).numpy(); out['pc.mean'] = d.mean(1).numpy()
    if extra_bank is not None:
        ub = torch.cat([bank, extra_bank]); d = torch.stack([torch.cdist(pf[i], ub).min(1).values for i in Q])
        out['pcU.max3'] = torch.topk(d, 3, 1).values.mean(1).numpy(); out['pcU.mean'] = d.mean(1).numpy()
    return out
BANK = int(os.environ.get('BANK', 4000))
res = {}; fus = {}
for rep in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
    rng = np.random.default_rng(rep)
    pats = np.unique(pid[N]); rng.shuffle(pats); fitp = set(pats[: len(pats)//2])
    F = np.array([i for i in N if pid[i] in fitp]); E = np.array([i for i in N if pid[i] not in fitp])
    T = np.concatenate([E, P]); yt = y[T]
    t0 = time.time()
    sT = signals(F, T)
    # 2-fold OOF within F for z
    fp = np.unique(pid[F]); rng.shuffle(fp); A = np.array([i for i in F if pid[i] in set(fp[::2])]); Bh = np.array([i for i in F if pid[i] not in set(fp[::2])])
    sA = signals(Bh, A); sB = signals(A, Bh)
    oof = {k: np.concatenate([sA[k], sB[k]]) for k in sA}
    print('rep', rep, 'signals', time.time()-t0, flush=True)
    for k, v in sT.items(): res.setdefault(k, []).append(roc_auc_score(yt, v))
    for k, v in ship.items(): res.setdefault(k, []).append(roc_auc_score(yt, v[T]))
    z = {k: (v - oof[k].mean()) / (oof[k].std() + 1e-8) for k, v in sT.items()}
    zs = {k: (v[T] - v[F].mean()) / (v[F].std() + 1e-8) for k, v in ship.items()}  # shipped: F normals are held out anyway
    allz = z | zs
    names = list(allz)
    for r in (2, 3):
        for combo in itertools.combinations(names, r):
            s = sum(allz[c] for c in combo)
            fus.setdefault(combo, []).append(roc_auc_score(yt, s))
for k, v in sorted(res.items(), key=lambda kv: -np.mean(kv[1])): print(f'{k:40s} {np.mean(v):.3f} ± {np.std(v):.3f}')
print('--- best fusions')
for k, v in sorted(fus.items(), key=lambda kv: -np.mean(kv[1]))[:25]: print(f'{" + ".join(k):90s} {np.mean(v):.3f} ± {np.std(v):.3f}')
