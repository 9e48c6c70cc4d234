"""Faces of Chorus shaped like other recommender libraries, so existing code switches with one
import: :mod:`chorus.compat.implicit` (implicit's ``AlternatingLeastSquares``)."""
