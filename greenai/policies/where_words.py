"""Why the winner of a ``Ranking`` won, in one sentence a person can check by hand:
"stay at PJM: moving 40 TB to ON costs 53 min and $3,200 for 6.0 kg saved"."""

from __future__ import annotations

from greenai.policies.where import Option, Question, Ranking, duration_text


def size_text(gb: float) -> str:
    """``40000`` -> ``40 TB`` (decimal units, as links and bills count them)."""
    for unit, scale in (("PB", 1e6), ("TB", 1e3), ("GB", 1.0)):
        if gb >= scale:
            return f"{gb / scale:.3g} {unit}"
    return f"{gb * 1000:.3g} MB"


def explain(ranking: Ranking, question: Question) -> str:
    """The winner and why, against the home location and the cleanest alternative."""
    winner = ranking.winner
    if winner is None:
        return "no eligible location: " + "; ".join(
            f"{o.location}: {o.why_not}" for o in ranking.excluded
        )
    home = next((o for o in ranking.ranked if o.location == ranking.home), None)
    cleanest = min(ranking.ranked, key=lambda o: (o.total_kg, o.egress_usd))
    if winner.location == ranking.home:
        return _stay(winner, cleanest, question)
    if home is None:
        why = next((o.why_not for o in ranking.excluded if o.location == ranking.home), "")
        text = f"run at {winner.location}: {ranking.home} is out ({why or 'not a candidate'})"
        return text + _cheapest_note(winner, ranking)
    saved = home.total_kg - winner.total_kg
    text = f"move to {winner.location}: {saved:.1f} kg less than staying at {home.location}"
    if winner.transfer_s:
        text += (
            f"; moving {size_text(question.data_gb)} costs {duration_text(winner.transfer_s)}"
            f" and ${winner.egress_usd:,.0f}"
        )
        if question.usd_per_kg is None:
            text += " (reported, not traded: give a carbon price to weigh $ against kg)"
    return text


def _stay(winner: Option, cleanest: Option, question: Question) -> str:
    if cleanest.location == winner.location:
        return f"stay at {winner.location}: no eligible location is cleaner"
    saved = winner.total_kg - cleanest.total_kg
    price = question.usd_per_kg or 0.0
    return (
        f"stay at {winner.location}: moving {size_text(question.data_gb)} to "
        f"{cleanest.location} costs {duration_text(cleanest.transfer_s)} and "
        f"${cleanest.egress_usd:,.0f} for {saved:.1f} kg saved (worth ${saved * price:,.2f} "
        f"at ${price:g}/kg)"
    )


def _cheapest_note(winner: Option, ranking: Ranking) -> str:
    others = [o for o in ranking.ranked if o is not winner]
    if not others:
        return "; the only eligible location"
    runner = others[0]
    return f"; {runner.total_kg - winner.total_kg:.1f} kg less than {runner.location}"
