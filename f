> sort l get o_*-
     
