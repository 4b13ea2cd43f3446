"""scikit-learn style estimators (fit returns self; fitted state ends in `_`), ranking metrics
and the evaluation path. Models never import transforms or flows."""
