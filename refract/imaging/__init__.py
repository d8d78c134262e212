"""Images without a model: uploads sanitised (``uploads``), decoding and measuring
(``pixels``), faces found and cropped (``faces``), cards drawn (``cardart``), and media
storage of image files (``storage``)."""
