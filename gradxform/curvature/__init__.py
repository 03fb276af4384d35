"""Curvature methods: Newton, Hessian-free Newton-CG (line search and trust region), nonlinear CG, BFGS and L-BFGS.

Each method is a block that turns the gradient into a preconditioned
direction (`scale_by_*`: the output points uphill, like the gradient) and a
full optimizer that chains the block, a sign flip and a line search from
[`gradxform.linesearch`][gradxform.linesearch]. The exceptions are [`newton`][gradxform.newton], which takes its
own damped (Levenberg-Marquardt) steps, and [`newton_cg_trust`][gradxform.newton_cg_trust], which
takes trust-region steps; neither needs a line search.
"""

from gradxform.curvature.bfgs import BfgsState, bfgs, scale_by_bfgs
from gradxform.curvature.lbfgs import LbfgsState, lbfgs, scale_by_lbfgs
from gradxform.curvature.newton import NewtonState, newton
from gradxform.curvature.newton_cg import NewtonCgState, newton_cg, scale_by_newton_cg
from gradxform.curvature.newton_cg_trust import NewtonCgTrustState, newton_cg_trust
from gradxform.curvature.nonlinear_cg import ConjugateGradientState, conjugate_gradient, scale_by_conjugate_gradient

__all__ = [
    "BfgsState",
    "ConjugateGradientState",
    "LbfgsState",
    "NewtonCgState",
    "NewtonCgTrustState",
    "NewtonState",
    "bfgs",
    "conjugate_gradient",
    "lbfgs",
    "newton",
    "newton_cg",
    "newton_cg_trust",
    "scale_by_bfgs",
    "scale_by_conjugate_gradient",
    "scale_by_lbfgs",
    "scale_by_newton_cg",
]
