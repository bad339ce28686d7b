"""The Pareto front of the sweep's points."""

__all__ = ["pareto_front"]


def pareto_front(points, cost="lut", value="images_per_s"):
    """Indices of the points no other point beats: none has at most their ``cost`` and at
    least their ``value`` with one of the two strictly better. Points without both figures
    are left out. The indices come in increasing cost."""
    ranked = sorted((index for index, point in enumerate(points)
                     if point.get(cost) is not None and point.get(value) is not None),
                    key=lambda index: (points[index][cost], -points[index][value]))
    front, best, best_cost = [], None, None
    for index in ranked:
        point_cost, point_value = points[index][cost], points[index][value]
        if best is None or point_value > best:
            front.append(index)
            best, best_cost = point_value, point_cost
        elif point_value == best and point_cost == best_cost:
            front.append(index)         # a tie with a front point: neither beats the other
    return front
