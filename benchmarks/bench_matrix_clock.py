"""Which clock for the matrix engine: plain time, log time, or a Sundman clock on the global rate.

    python benchmarks/bench_matrix_clock.py      # ~2 min on the 2-core box

Same field (:func:`jepa_dynamics.engines.matrix._field`), same Tsit5 + PID controller (rtol 1e-10), diagonal
data (3 modes), JEPA, balanced init, integrated to 1.2 x the latest theory t*.  Prints the step
counts (docs/benchmarks.md section 5 and matrix.py's docstring quote them).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np, jax, jax.numpy as jnp, diffrax as dfx
from jepa_dynamics.engines import matrix
from jepa_dynamics.theory import modes
lam, rho = np.array([1.0, 0.7, 1.3]), np.array([0.9, 0.6, 0.8])
cov=(np.diag(lam/rho), np.diag(lam), np.diag(np.maximum(lam/rho,lam*rho)))
for L, eps in [(2,1e-3),(4,1e-3),(4,1e-4)]:
    cfg=matrix.MatrixConfig('jepa',L,eps=eps)
    m=modes.decompose(cov[0],cov[1])
    th=matrix.theory_critical_times(cfg,m); T=float(np.max(th))*1.2
    y0=jnp.asarray(matrix.initial_state(cfg,3,m))
    mae,ema=matrix._flags('jepa',None)
    args=(tuple(jnp.asarray(c) for c in cov), jnp.asarray(0.), jnp.asarray(0.), mae, ema, None)
    ctrl=dfx.PIDController(rtol=1e-10,atol=1e-14)
    # plain time
    s1=dfx.diffeqsolve(dfx.ODETerm(matrix._field),dfx.Tsit5(),0.,T,T*1e-6,y0,args,stepsize_controller=ctrl,max_steps=10**6,adjoint=dfx.ForwardMode())
    # log time: t = t0 (e^tau - 1)
    t0=1.0
    def flog(tau,y,a): return t0*jnp.exp(tau)*matrix._field(None,y,a)
    s2=dfx.diffeqsolve(dfx.ODETerm(flog),dfx.Tsit5(),0.,float(np.log1p(T/t0)),1e-3,y0,args,stepsize_controller=ctrl,max_steps=10**6,adjoint=dfx.ForwardMode())
    # Sundman: dt/ds = 1/r, r = ||F||/||y||
    def fs(s,z,a):
        y,t=z; f=matrix._field(None,y,a); r=jnp.sqrt(jnp.sum(f**2)/jnp.sum(y**2)); return (f/r, 1.0/r)
    ev=dfx.Event(lambda s,z,a,**k: z[1]>=T)
    s3=dfx.diffeqsolve(dfx.ODETerm(fs),dfx.Tsit5(),0.,1e6,1e-3,(y0,jnp.asarray(0.)),args,stepsize_controller=ctrl,max_steps=10**5,event=ev,adjoint=dfx.ForwardMode(),throw=False)
    sund = int(s3.stats['num_steps']); sund = f'{sund} (t reached {float(s3.ys[1][-1]):.4g})'
    w1=matrix.end_to_end(s1.ys[-1][:-2]); w2=matrix.end_to_end(s2.ys[-1][:-2])
    print(f"L={L} eps={eps} T={T:.4g}: steps t {int(s1.stats['num_steps'])}, log-time {int(s2.stats['num_steps'])}, Sundman {sund}; |W_t - W_log|={float(jnp.max(jnp.abs(w1-w2))):.1e}", flush=True)
